/* Content-defined chunking: FastCDC with normalised chunking (level 2)
 * and a gear table derived from the repository's chunker key, so that
 * chunk boundaries reveal nothing about contents to the storage. */
#ifndef BW_REPO_CHUNKER_H
#define BW_REPO_CHUNKER_H

#include <bulwark/repo.h>

struct bw_chunker {
	uint64_t gear[256];
	uint64_t mask_s, mask_l; /* stricter before avg, looser after */
	uint32_t min, avg, max;
};

/* params must be valid (bw_chunker_params_check). */
void bw_chunker_init(struct bw_chunker *c, const uint8_t key[32],
                     const struct bw_chunker_params *p);
/* 0, or BW_EINVAL with a message: min >= 64 KiB? no: min >= 4 KiB,
 * avg a power of two, min < avg < max <= BW_CHUNK_MAX_LIMIT. */
int bw_chunker_params_check(const struct bw_chunker_params *p) BW_WUR;
/* Length of the chunk starting at p[0].  p holds n bytes; eof says no more
 * data follows them.  Returns 0 only when !eof and n < max (more data is
 * needed to decide); otherwise 1..min(n,max). */
size_t bw_chunker_next(const struct bw_chunker *c, const uint8_t *p, size_t n,
                       int eof);

#endif
