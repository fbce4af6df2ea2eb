/* Shared by check and prune: the stored index seen file by file and pack
 * by pack (not merged into one entry per blob as bw_repo_load_index
 * does), snapshot loading that reports damage instead of skipping it,
 * the list of packs on the backend, and a walk over every tree.
 *
 * Everything here reports problems through a callback naming the object
 * ("index 3fa2...", "snapshot 1a2b...", "tree 99ff...") and never writes
 * to the repository. */
#ifndef BW_REPO_MAINT_H
#define BW_REPO_MAINT_H

#include "repo_int.h"

/* what: the object ("pack 3fa2..."); msg: what is wrong with it */
typedef void (*bw_maint_report_fn)(void *arg, const char *what,
                                   const char *msg);

enum bw_ixfile_state { BW_IXF_OK, BW_IXF_SUPERSEDED, BW_IXF_DAMAGED };

struct bw_ixfile {
	struct bw_id id;
	enum bw_ixfile_state state;
};

struct bw_ixpack {
	struct bw_id id;
	struct bw_pack_blob *blobs; /* as listed by the first index file naming it */
	size_t n, cap;
};

struct bw_ixscan {
	struct bw_ixfile *files;
	size_t nfiles;
	struct bw_ixpack *packs; /* from files in state OK, each pack once */
	size_t npacks, cappacks;
	/* blob -> first location; pack numbers are positions in packs[] */
	struct bw_index *x;
};

/* Load every index file.  Damaged ones are reported and marked; files
 * superseded by a readable one are marked and their packs ignored.  If an
 * index file vanishes while loading (a concurrent prune replaced it) the
 * whole scan starts again.  Release with bw_ixscan_release. */
int bw_ixscan_load(struct bw_repo *r, struct bw_ixscan *s,
                   bw_maint_report_fn report, void *arg) BW_WUR;
void bw_ixscan_release(struct bw_ixscan *s);

/* Every snapshot that can be read, sorted oldest first; each damaged one
 * is reported and counted in *ndamaged.  Snapshots removed meanwhile are
 * silently skipped.  Free with bw_snapshots_free. */
int bw_maint_snapshots(struct bw_repo *r, struct bw_snapshot **out,
                       size_t *n, size_t *ndamaged,
                       bw_maint_report_fn report, void *arg) BW_WUR;

/* Packs stored on the backend, sorted by ID. */
struct bw_packfile {
	struct bw_id id;
	uint64_t size;
};
int bw_maint_list_packs(struct bw_repo *r, struct bw_packfile **out,
                        size_t *n) BW_WUR;
/* position of id in a sorted list, or -1 */
ssize_t bw_maint_find_pack(const struct bw_packfile *v, size_t n,
                           const struct bw_id *id);

/* A set of IDs on top of struct bw_index (entries in pack 0). */
struct bw_index *bw_idset_new(void);
/* 1 if id was added, 0 if it was there, or a negative error */
int bw_idset_add(struct bw_index *set, const struct bw_id *id) BW_WUR;
int bw_idset_has(struct bw_index *set, const struct bw_id *id);

/* Walk every tree of the given snapshots once, adding tree IDs to trees
 * and data blob IDs to data (both bw_idset).  Trees and data blobs missing
 * from the scan, and trees that cannot be decoded, are reported and
 * counted in *problems; the walk goes on below what it could read.
 * If bad_pack is non-NULL, bad_pack[p] set means pack number p is unusable
 * (missing or damaged): blobs there count as missing without a report of
 * their own (the pack was reported).  Returns 0 or a fatal error. */
struct bw_maint_walk {
	struct bw_repo *r;
	struct bw_ixscan *scan;
	const uint8_t *bad_pack;
	struct bw_index *trees, *data;
	bw_maint_report_fn report;
	void *arg;
	uint64_t problems;
	uint64_t trees_done;
	bw_progress_fn progress;
	void *progress_arg;
};
int bw_maint_walk(struct bw_maint_walk *w, const struct bw_snapshot *snaps,
                  size_t n) BW_WUR;

/* Read and decode one blob through the scan (thread-safe with one ctx per
 * thread). */
int bw_maint_load_blob(struct bw_repo *r, struct bw_ixscan *s,
                       struct bw_blob_ctx *c, const struct bw_id *id,
                       struct bw_buf *out) BW_WUR;

#endif
