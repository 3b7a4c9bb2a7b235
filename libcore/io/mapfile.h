// mapfile.h: map a whole file read-only (the GGUF, safetensors and shard readers share this).
#ifndef HASS_MAPFILE_H
#define HASS_MAPFILE_H

#include "hass.h"

// Map the regular, non-empty file at path. HASS_EIO "<path>: <why>" when it cannot be opened,
// is not a regular file or cannot be mapped; HASS_EFORMAT "<path>: empty file" when it has no
// bytes. On success *map covers *n_bytes bytes; release it with hass_file_unmap.
hass_err hass_file_map(const char *path, const uint8_t **map, uint64_t *n_bytes);
// Release a mapping from hass_file_map; NULL is a no-op.
void hass_file_unmap(const uint8_t *map, uint64_t n_bytes);
// Let the memory of bytes [p, p + n) of a mapping from hass_file_map go (the whole pages inside
// it): they stay readable and are read from the file again if touched (a repacked copy of
// them is in use).
void hass_file_map_drop(const uint8_t *p, uint64_t n);

#endif
