/* Walking snapshot trees for the browsing commands (ls, find, diff, stats,
 * mount): a recursive walker, path lookup, a set/map keyed by blob ID, and
 * the shared ways of showing a node (mode string, JSON object). */
#ifndef BW_CLI_TREEWALK_H
#define BW_CLI_TREEWALK_H

#include "cli.h"

/* ---- walking ------------------------------------------------------------ */
struct cli_walk_ent {
	const char *path;  /* absolute path in the snapshot ("/usr/bin"), NUL-terminated */
	size_t path_len;
	const struct bw_node *node;
	unsigned depth;    /* 0 for entries directly in the starting directory */
};
/* Return 0 to go on, CLI_WALK_SKIP to not descend into this directory,
 * or a negative BW_E* code to stop the walk with that code.  The entry is
 * valid during the call only. */
typedef int (*cli_walk_fn)(void *arg, const struct cli_walk_ent *e);
#define CLI_WALK_SKIP 1
#define CLI_WALK_MAX_DEPTH 1024

/* Visit every entry below the directory tree `tree`, depth first, parents
 * before children, in name order.  prefix is the directory's own path
 * ("" for the snapshot root, else "/a/b" without a trailing slash). */
int cli_walk(struct bw_repo *r, const struct bw_id *tree, const char *prefix,
             cli_walk_fn fn, void *arg) BW_WUR;

/* Path lookup inside a snapshot.  path is absolute or relative to the
 * root; "", "/" and "." components name the root. */
struct cli_lookup {
	struct bw_tree tree;        /* the parent directory, holds node */
	const struct bw_node *node; /* NULL: the root directory */
	int is_dir;
	struct bw_id dir;           /* if is_dir: the directory's tree ID */
	char *path;                 /* normalised: "" (root) or "/a/b"; owned */
};
/* BW_ENOENT (with a message naming the path) if it does not exist.
 * Release with cli_lookup_release, also after an error. */
int cli_lookup_path(struct bw_repo *r, const struct bw_id *root,
                    const char *path, struct cli_lookup *out) BW_WUR;
void cli_lookup_release(struct cli_lookup *l);

/* ---- blob ID map ----------------------------------------------------------
 * Open addressing; each entry carries four counters for the caller. */
struct cli_idmap_ent {
	struct bw_id id;
	uint64_t v[4];
	int used;
};
struct cli_idmap {
	struct cli_idmap_ent *e;
	size_t n, cap;
};
void cli_idmap_init(struct cli_idmap *m);
void cli_idmap_release(struct cli_idmap *m);
/* The entry for id, or NULL.  Valid until the next put. */
struct cli_idmap_ent *cli_idmap_find(const struct cli_idmap *m,
                                     const struct bw_id *id);
/* Insert id with counters v (NULL: zeros).  1 if it was new, 0 if present
 * (counters left alone), BW_ENOMEM. */
int cli_idmap_put(struct cli_idmap *m, const struct bw_id *id,
                  const uint64_t *v) BW_WUR;

/* ---- showing nodes ----------------------------------------------------------- */
/* "drwxr-xr-x" and friends, with setuid/setgid/sticky as ls(1) shows them */
void cli_mode_string(const struct bw_node *n, char out[11]);
/* "file", "dir", "symlink", "chardev", "blockdev", "fifo", "socket" */
const char *cli_node_type_name(uint8_t type);
/* st_mode-style number: type bits | permission bits */
uint32_t cli_node_st_mode(const struct bw_node *n);
/* One JSON object describing the node at path (message_type "node"). */
json_t *cli_json_node(const char *path, size_t path_len, const struct bw_node *n);
/* -l line: mode, user, group, size, local mtime, path [-> target] */
void cli_print_node_long(FILE *f, const char *path, size_t path_len,
                         const struct bw_node *n);

#endif
