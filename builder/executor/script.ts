/**
 * The /bin/sh program that runs inside the new namespaces (as pid 1, root of a private mount namespace): it mounts
 * the overlay and the runtime's file systems, then execs the command chain given after `--`. It is constant text:
 * every path and value arrives as a positional word or a KILN_* variable, never spliced into the source.
 *
 * Variables: KILN_MERGED (mount point), KILN_OVERLAY (overlay options), KILN_CWD (cwd relative to the root),
 * KILN_HOSTNAME, KILN_HOSTNAME_BIN and KILN_IP
 * (empty when absent; KILN_IP is set only when lo must be brought up).
 * Operations (words before `--`):
 *   proc DST | dev DST | bind SRC DST ro|rw | tmpfs DST OPTIONS | secrets STAGING_DIR
 *   secret SRC DST STAGED_FILE OCTAL_MODE UID GID | need DST dir|file
 * Setup errors go to the original stderr and exit 125; only the command's output reaches stdout.
 */
export const RUN_SCRIPT = String.raw`set -eu
umask 022
fail() { printf 'kiln: %s\n' "$*" >&2; exit 125; }
m=$KILN_MERGED
mount -t overlay overlay -o "$KILN_OVERLAY" "$m" >&2 || fail "cannot mount the overlay on $m"
if [ -n "$KILN_CWD" ]; then mkdir -p -- "$m/$KILN_CWD" || fail "cannot create the working directory /$KILN_CWD"; fi
if [ -n "$KILN_HOSTNAME_BIN" ]; then
  "$KILN_HOSTNAME_BIN" "$KILN_HOSTNAME" || fail "cannot set the hostname"
else
  printf '%s' "$KILN_HOSTNAME" > /proc/sys/kernel/hostname || fail "cannot set the hostname"
fi
if [ -n "$KILN_IP" ]; then "$KILN_IP" link set lo up >&2 || fail "cannot bring lo up"; fi
while [ "$#" -gt 0 ]; do
  op=$1; shift
  case $op in
  --) break ;;
  proc)
    mount -t proc -o nosuid,nodev,noexec proc "$1" >&2 || fail "cannot mount /proc"
    # The kernel's knobs stay read-only: the RUN shares the host kernel (and, by default, its network).
    for p in sys sysrq-trigger irq bus fs; do
      if [ -e "$1/$p" ]; then mount --bind -o ro -- "$1/$p" "$1/$p" >&2 || fail "cannot protect /proc/$p"; fi
    done
    shift ;;
  dev)
    d=$1; shift
    mount -t tmpfs -o nosuid,mode=755,size=65536k tmpfs "$d" >&2 || fail "cannot mount /dev"
    for n in null zero full random urandom tty; do
      : > "$d/$n"
      mount --bind -- "/dev/$n" "$d/$n" >&2 || fail "cannot bind /dev/$n"
    done
    mkdir "$d/pts" "$d/shm"
    mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$d/pts" 2>/dev/null \
      || mount -t tmpfs -o nosuid,noexec,mode=755 tmpfs "$d/pts" >&2 || fail "cannot mount /dev/pts"
    mount -t tmpfs -o nosuid,nodev,mode=1777,size=65536k shm "$d/shm" >&2 || fail "cannot mount /dev/shm"
    ln -s /proc/self/fd "$d/fd"
    ln -s /proc/self/fd/0 "$d/stdin"
    ln -s /proc/self/fd/1 "$d/stdout"
    ln -s /proc/self/fd/2 "$d/stderr"
    ln -s pts/ptmx "$d/ptmx"
    ;;
  bind)
    if [ "$3" = ro ]; then flags=ro; else flags=rw; fi
    mount --bind -o "$flags" -- "$1" "$2" >&2 || fail "cannot bind $1 on $2"
    shift 3 ;;
  tmpfs)
    mount -t tmpfs -o "$2" tmpfs "$1" >&2 || fail "cannot mount a tmpfs on $1"
    shift 2 ;;
  secrets)
    mount -t tmpfs -o nosuid,nodev,noexec,mode=700 tmpfs "$1" >&2 || fail "cannot mount the secrets tmpfs"
    shift ;;
  secret)
    cp -- "$1" "$3" >&2 || fail "cannot read secret $1"
    chown "$5:$6" "$3" >&2 && chmod "$4" "$3" >&2 || fail "cannot set the owner or mode of secret $1"
    mount --bind -o ro -- "$3" "$2" >&2 || fail "cannot bind secret $1 on $2"
    shift 6 ;;
  need)
    if [ ! -e "$1" ]; then
      if [ "$2" = dir ]; then mkdir -p -- "$1"; else mkdir -p -- "$(dirname -- "$1")" && : > "$1"; fi \
        || fail "cannot create mount point $1"
    fi
    shift 2 ;;
  *) fail "unknown operation $op" ;;
  esac
done
exec 2>&1
exec "$@"
`;
