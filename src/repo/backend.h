/* Storage backends: the small interface every store implements.
 * Objects are immutable once written; names are lowercase hex. */
#ifndef BW_REPO_BACKEND_H
#define BW_REPO_BACKEND_H

#include <bulwark/core.h>

enum bw_obj {
	BW_OBJ_CONFIG,   /* "config" (name ignored) */
	BW_OBJ_KEY,      /* keys/<name> */
	BW_OBJ_PACK,     /* data/<name[0..2]>/<name> */
	BW_OBJ_INDEX,    /* index/<name> */
	BW_OBJ_SNAPSHOT, /* snapshots/<name> */
	BW_OBJ_LOCK,     /* locks/<name> */
	BW_OBJ_PLAN,     /* plans/<name>: prune's deletion plans */
	BW_OBJ__N
};
const char *bw_obj_name(enum bw_obj t); /* "pack", "index", ... */
int bw_obj_parse(const char *s, enum bw_obj *t) BW_WUR;

struct bw_backend;
typedef int (*bw_list_fn)(void *arg, const char *name, uint64_t size);

struct bw_backend_ops {
	/* every object of type t; cb returning non-zero stops and is returned */
	int (*list)(struct bw_backend *b, enum bw_obj t, bw_list_fn cb, void *arg);
	/* append bytes [off, off+len) (len 0: to the end) to out.
	 * BW_ENOENT if missing, BW_EFORMAT if shorter than asked. */
	int (*read)(struct bw_backend *b, enum bw_obj t, const char *name,
	            uint64_t off, size_t len, struct bw_buf *out);
	/* store atomically and durably; BW_EEXIST if the name exists */
	int (*write)(struct bw_backend *b, enum bw_obj t, const char *name,
	             const void *p, size_t n);
	/* a scratch descriptor for staging a large object (a pack) */
	int (*temp)(struct bw_backend *b, int *fd);
	/* store the first n bytes of a temp() descriptor under name and close it */
	int (*write_temp)(struct bw_backend *b, enum bw_obj t, const char *name,
	                  int fd, uint64_t n);
	/* BW_EPERM on an append-only store */
	int (*remove)(struct bw_backend *b, enum bw_obj t, const char *name);
	int (*stat)(struct bw_backend *b, enum bw_obj t, const char *name,
	            uint64_t *size);
	/* make everything stored so far durable (write_temp need not be) */
	int (*sync)(struct bw_backend *b);
	void (*free)(struct bw_backend *b);
};

struct bw_backend {
	const struct bw_backend_ops *ops;
	int append_only; /* checked by the generic wrappers below */
	char *location;
};

/* Local directory.  With create, makes the layout (fails if config exists). */
int bw_backend_local_open(const char *path, int create, struct bw_backend **out) BW_WUR;

/* Wrappers that enforce append_only and add the object name to errors. */
int bw_be_list(struct bw_backend *b, enum bw_obj t, bw_list_fn cb, void *arg) BW_WUR;
int bw_be_read(struct bw_backend *b, enum bw_obj t, const char *name,
               uint64_t off, size_t len, struct bw_buf *out) BW_WUR;
int bw_be_write(struct bw_backend *b, enum bw_obj t, const char *name,
                const void *p, size_t n) BW_WUR;
int bw_be_remove(struct bw_backend *b, enum bw_obj t, const char *name) BW_WUR;
int bw_be_stat(struct bw_backend *b, enum bw_obj t, const char *name,
               uint64_t *size) BW_WUR;
int bw_be_sync(struct bw_backend *b) BW_WUR;
void bw_be_free(struct bw_backend *b);

#endif
