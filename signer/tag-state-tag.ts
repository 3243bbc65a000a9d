// Its own module so the CLI can name the tag without loading the signer (start-up time of every command).
/** The tag the newest tag state is stored under. */
export const TAG_STATE_TAG = 'kiln-tag-state';
