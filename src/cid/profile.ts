/**
 * Kubo's `unixfs-v1-2025` import profile (IPIP-499), as Kubo v0.43.0 `config/profile.go` sets it and
 * boxo v0.42 applies it.
 */

/** Fixed-size chunker `size-1048576`. */
export const CHUNK_SIZE = 1_048_576
/** `Import.UnixFSFileMaxLinks`: children per dag-pb File node (balanced layout). */
export const FILE_MAX_LINKS = 1024
/**
 * `Import.UnixFSHAMTDirectorySizeThreshold` = 256KiB with `UnixFSHAMTDirectorySizeEstimation` = `block`:
 * a directory is HAMT-sharded when its basic dag-pb block would be strictly larger than this many
 * bytes (boxo `needsToSwitchByBlockSize`: `estimatedNewSize > HAMTShardingSize`). Exactly at the
 * threshold it stays basic.
 */
export const HAMT_THRESHOLD = 262_144
/** `Import.UnixFSHAMTDirectoryMaxFanout`. */
export const HAMT_FANOUT = 256
/** Multicodec of murmur3-x64-64, the HAMT's `hashType`. */
export const HAMT_HASH_TYPE = 0x22

/** Multicodecs. */
export const RAW_CODEC = 0x55
export const DAG_PB_CODEC = 0x70
export const SHA2_256 = 0x12
