export { openOciArchive, extractOciArchive, type OpenArchiveOptions } from './oci-archive.js';
export { openDockerArchive, type OpenDockerArchiveOptions } from './docker-archive.js';
export { DockerArchiveWriter } from './docker-archive-write.js';
export { extractDockerArchive, type DockerArchiveImage } from './docker-archive-read.js';
export { familiarReference } from './docker-save-format.js';
export { openLocalTarget, isLocalSpec, LOCAL_TRANSPORTS, type OpenLocalTargetOptions } from './open.js';
export { DEFAULT_ARCHIVE_LIMITS, readTarMembers, safeMemberPath, type ArchiveLimits, type TarMember } from './tar-reader.js';
export { writeTarAtomic, type TarSource } from './tar-writer.js';
