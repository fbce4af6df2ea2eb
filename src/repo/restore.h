/* Restore internals shared by restore.c (the walk, batches, hard links,
 * directories) and restore_write.c (the workers that write and verify
 * file contents).  Not part of any public API. */
#ifndef BW_RESTORE_H
#define BW_RESTORE_H

#include "repo_int.h"

#include <pthread.h>
#include <sys/types.h>

#define OFF_UNKNOWN UINT64_MAX
#define IDCACHE_MAX 256

/* What metadata needs, copied out of a tree node so that the tree can be
 * released.  xattrs point into own (one block, freed with it) or, for
 * metadata used at once, into the node. */
struct meta {
	uint32_t mode, uid, gid;
	int64_t atime_ns, mtime_ns;
	const struct bw_xattr *xattrs;
	size_t nxattrs;
	void *own;
};

/* One blob of a file: its ID, where it lies in its pack and in the file. */
struct seg {
	struct bw_id id;
	uint64_t off;  /* in the file; OFF_UNKNOWN if it cannot be known */
	uint32_t pack; /* BW_PACK_NONE: not in the index */
	uint32_t poff, plen, raw;
	uint8_t grouped; /* poff, plen: the group holding the blob */
};

/* A regular file of the current batch.  Owns path, m.own and segs. */
struct rfile {
	char *path;      /* in the snapshot: "/a/b", NUL-terminated */
	struct meta m;
	uint64_t size;
	size_t nseg;
	struct seg *segs;
	size_t link;     /* index in c->links when nlink > 1, else SIZE_MAX */
	int fd;          /* split files: shared by the parts */
	int parts_left;  /* split files, guarded by c->mu */
	int damaged;     /* some content could not be restored */
	int failed;      /* not created */
};

/* Another name of a file restored in this or an earlier batch. */
struct plink {
	char *path;
	size_t link; /* index in c->links */
};

/* Files handed to the workers together; bounded by BATCH_FILES_MAX and
 * BATCH_BYTES_MAX (a bigger file is a batch of its own). */
struct batch {
	struct rfile **f;
	size_t n, cap;
	uint64_t bytes;
	struct plink *l;
	size_t nl, capl;
	size_t tasks; /* submitted and not done yet (c->mu) */
};

/* One being listed, the others queued or being written, oldest first. */
#define NBATCH 3

/* (dev, ino) of a file with nlink > 1, and its first name.  Kept for the
 * whole restore, so small: the name is its directory (in c->dirs) and its
 * last component (in c->lnames). */
struct hlink {
	uint64_t dev, ino, size;
	uint64_t digest; /* of the content IDs (first bytes of a MAC) */
	uint64_t name;   /* offset in c->lnames; UINT64_MAX: not listed yet */
	uint32_t dir;    /* index in c->dirs; UINT32_MAX: the target */
	uint32_t failed; /* the first name could not be created */
};

struct rdir {
	char *path;
	struct meta m;
};

/* One directory level of the walk. */
struct level {
	const struct bw_node *n; /* NULL: the target */
	size_t plen;             /* length of its path in c->path */
	int fd;                  /* -1: not created yet, -2: failed */
	uint32_t dir;            /* index in c->dirs once created */
};

struct idcache {
	struct { char name[64]; uint32_t id; int ok; } v[IDCACHE_MAX];
	int n;
};

struct wstate;

struct ctx {
	struct bw_repo *r;
	const struct bw_restore_opts *o;
	int rootfd;
	int chown_ok;
	int have_openat2;
	int nthreads;
	int counting; /* first pass: only progress totals, nothing made */

	/* walk (single thread) */
	struct bw_buf path;
	struct level *lv;
	size_t nlv, caplv;
	struct batch b[NBATCH]; /* a ring */
	size_t bhead, nfly;     /* oldest submitted; how many submitted */
	struct rdir *dirs;
	size_t ndirs, capdirs;
	struct hlink *links;
	size_t nlinks, caplinks;
	struct bw_buf lnames; /* NUL-terminated last components */
	uint32_t *lhash; /* open addressing: index + 1, 0 = empty */
	size_t lhcap;
	struct idcache users, groups;
	char name[BW_NAME_MAX + 1];
	int sub_found;

	struct bw_pool *pool;
	pthread_mutex_t mu; /* guards everything below */
	pthread_cond_t done; /* a batch's last task ended */
	struct wstate *idle;
	struct bw_progress prog;
	struct bw_restore_stats st;
	int damaged;
	int xattr_unsup;
};

/* restore.c */
void bw_rs_report(struct ctx *c, const char *path, const char *fmt, ...)
	BW_PRINTF(3, 4);
void bw_rs_progress(struct ctx *c, uint64_t files, uint64_t bytes,
                    const char *cur, int final);
void bw_rs_count(struct ctx *c, uint64_t *field, uint64_t n);
const char *bw_rs_errmsg(int r);
int bw_rs_at_open(struct ctx *c, const char *path, int flags, mode_t mode);
int bw_rs_parent_open(struct ctx *c, const char *path, const char **name);
void bw_rs_parent_close(struct ctx *c, int fd);
void bw_rs_meta_fd(struct ctx *c, int fd, const char *path,
                   const struct meta *m);

/* restore_write.c: worker states (one per thread, made before any
 * submit), and the submission of a batch's files for writing or, with
 * verify, for re-reading.  Submitting may block while the pool's queue is
 * full; bw_rs_batch_wait waits for one batch's tasks. */
int bw_rs_workers_new(struct ctx *c);
void bw_rs_workers_free(struct ctx *c);
int bw_rs_submit_batch(struct ctx *c, struct batch *b, int verify) BW_WUR;
void bw_rs_batch_wait(struct ctx *c, struct batch *b);

#endif
