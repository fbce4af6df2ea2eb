/* bulwark repo: the backup repository engine.
 *
 * A repository is a set of immutable, content-addressed objects behind a
 * backend (see docs/internals/repo-format.md).  This header is what the
 * command line, the agent and the server use; everything else in
 * src/repo/ is private to the engine. */
#ifndef BULWARK_REPO_H
#define BULWARK_REPO_H

#include <bulwark/core.h>
#include <bulwark/crypto.h>

#define BW_REPO_VERSION 3

struct bw_repo;

/* ---- trees ---------------------------------------------------------------
 * A tree is one directory's listing, sorted by name (bytewise, unique).
 * Decoded trees point into their own plaintext buffer: strings are NOT
 * NUL-terminated and carry lengths. */
enum bw_node_type {
	BW_NODE_FILE = 1,
	BW_NODE_DIR = 2,
	BW_NODE_SYMLINK = 3,
	BW_NODE_CHR = 4,
	BW_NODE_BLK = 5,
	BW_NODE_FIFO = 6,
	BW_NODE_SOCK = 7,
};

struct bw_xattr {
	const char *name;
	size_t name_len;
	const uint8_t *value;
	size_t value_len;
};

struct bw_node {
	const char *name; /* any bytes but '/' and NUL; not valid UTF-8 is fine */
	size_t name_len;
	uint8_t type;     /* enum bw_node_type */
	uint32_t mode;    /* permission bits incl. setuid/setgid/sticky (07777) */
	uint32_t uid, gid;
	const char *user, *group; /* names at backup time, may be empty */
	size_t user_len, group_len;
	uint64_t size;
	int64_t mtime_ns, atime_ns, ctime_ns;
	uint64_t dev, ino, nlink, rdev;
	const char *target; /* symlink target */
	size_t target_len;
	const struct bw_xattr *xattrs; /* includes system.posix_acl_* (ACLs) */
	size_t nxattrs;
	const struct bw_id *content; /* file: data blob IDs in order */
	size_t ncontent;
	struct bw_id subtree; /* dir: tree blob ID */
};

struct bw_tree {
	struct bw_node *nodes;
	size_t n;
	struct bw_xattr *xattr_store; /* owned by decode */
	struct bw_buf raw;            /* owned plaintext the nodes point into */
};

/* Limits that every decoder enforces. */
#define BW_TREE_MAX_BYTES ((size_t)64 << 20)
#define BW_TREE_MAX_NODES 4000000
#define BW_NAME_MAX 4096
#define BW_XATTR_MAX_VALUE ((size_t)1 << 20)

/* Serialise (nodes must be sorted by name and unique). */
int bw_tree_encode(const struct bw_node *nodes, size_t n, struct bw_buf *out) BW_WUR;
/* Parse untrusted plaintext.  Takes ownership of *raw (it is moved into
 * out->raw, raw is left empty).  Checks bounds, types, sorting. */
int bw_tree_decode(struct bw_buf *raw, struct bw_tree *out) BW_WUR;
void bw_tree_release(struct bw_tree *t);
/* binary search by name; NULL if absent */
const struct bw_node *bw_tree_find(const struct bw_tree *t, const char *name,
                                   size_t len);
int bw_node_cmp_name(const char *a, size_t al, const char *b, size_t bl);

/* ---- snapshots ------------------------------------------------------------ */
struct bw_snapshot_summary {
	uint64_t files_new, files_changed, files_unmodified;
	uint64_t dirs_new, dirs_changed, dirs_unmodified;
	uint64_t data_blobs, tree_blobs;
	uint64_t data_added;        /* plaintext bytes of new blobs */
	uint64_t data_added_packed; /* bytes written to packs */
	uint64_t total_files, total_bytes;
	uint64_t errors;            /* files that could not be read */
	int64_t start_ns, end_ns;
};

struct bw_snapshot {
	struct bw_id id; /* storage name: not part of the JSON */
	int64_t time_ns;
	struct bw_id tree;
	int has_parent;
	struct bw_id parent;
	char *hostname, *username;
	uint32_t uid, gid;
	char **paths;
	size_t npaths;
	char **tags;
	size_t ntags;
	char **excludes;
	size_t nexcludes;
	char *program_version;
	struct bw_snapshot_summary summary;
};

int bw_snapshot_to_json(const struct bw_snapshot *s, struct bw_buf *out) BW_WUR;
/* Parse untrusted JSON (bounded); on error out is left released. */
int bw_snapshot_from_json(const uint8_t *p, size_t n, struct bw_snapshot *out) BW_WUR;
void bw_snapshot_release(struct bw_snapshot *s);
int bw_snapshot_has_tag(const struct bw_snapshot *s, const char *tag);

/* ---- forget policy ---------------------------------------------------------- */
struct bw_forget_policy {
	int last, hourly, daily, weekly, monthly, yearly; /* 0 = unused, -1 = all */
	int64_t within_ns;                                /* 0 = unused */
	char **keep_tags;                                 /* keep any with one of these */
	size_t nkeep_tags;
};
/* snaps: one group (same host and paths), any order.  Sets keep[i] and
 * writes a short reason ("last", "daily", "within", "tag" ... joined with
 * ',') into reasons[i] (64 bytes each, may be NULL).  An empty policy
 * keeps everything. Time buckets are in local time. */
int bw_forget_apply(const struct bw_forget_policy *p,
                    const struct bw_snapshot *const *snaps, size_t n,
                    int *keep, char (*reasons)[64]) BW_WUR;
int bw_forget_policy_empty(const struct bw_forget_policy *p);

/* ---- repository ----------------------------------------------------------- */
struct bw_chunker_params {
	uint32_t min, avg, max; /* bytes; avg a power of two */
};
#define BW_CHUNK_MIN_DEFAULT (512u << 10)
#define BW_CHUNK_AVG_DEFAULT (1u << 20)
#define BW_CHUNK_MAX_DEFAULT (4u << 20)
#define BW_CHUNK_MAX_LIMIT (16u << 20)

struct bw_init_opts {
	struct bw_chunker_params chunker; /* zeros: defaults */
	int compression;                  /* zstd level; 0 = default, -1 = off */
	uint64_t kdf_ops;                 /* 0 = default */
	size_t kdf_mem;                   /* 0 = default */
	int version;                      /* format; 0 = BW_REPO_VERSION */
};
#define BW_KDF_OPS_DEFAULT 3
#define BW_KDF_MEM_DEFAULT ((size_t)32 << 20)

/* location: a directory path (local backend).  pass: passphrase bytes.
 * Creates the repository; fails with BW_EEXIST if one is there. */
int bw_repo_init(const char *location, const char *pass, size_t passlen,
                 const struct bw_init_opts *o, struct bw_repo **out) BW_WUR;
/* Opens with any key whose passphrase matches (BW_EPASS if none). */
int bw_repo_open(const char *location, const char *pass, size_t passlen,
                 struct bw_repo **out) BW_WUR;
void bw_repo_close(struct bw_repo *r);
/* Refuse deletes and overwrites from now on (as an append-only server would). */
void bw_repo_set_append_only(struct bw_repo *r, int on);
void bw_repo_id_hex(const struct bw_repo *r, char out[2 * BW_ID_LEN + 1]);
/* zstd level used for new blobs; 0 = store uncompressed */
void bw_repo_set_compression(struct bw_repo *r, int level);
int bw_repo_compression(const struct bw_repo *r);
const struct bw_chunker_params *bw_repo_chunker(const struct bw_repo *r);
/* Local cache directory of this repository, or NULL if none. */
const char *bw_repo_cache_dir(const struct bw_repo *r);

/* keys */
struct bw_key_info {
	char name[2 * BW_ID_LEN + 1];
	char host[256], user[256];
	int64_t created_ns;
	int current; /* the key this repo was opened with */
};
int bw_key_add(struct bw_repo *r, const char *pass, size_t passlen,
               char name_out[2 * BW_ID_LEN + 1]) BW_WUR;
int bw_key_list(struct bw_repo *r, struct bw_key_info **out, size_t *n) BW_WUR;
/* refuses to remove the key in use (BW_EBUSY) */
int bw_key_remove(struct bw_repo *r, const char *name_prefix) BW_WUR;
/* replace the key in use with one for the new passphrase */
int bw_key_passwd(struct bw_repo *r, const char *pass, size_t passlen) BW_WUR;

/* Load the whole index (all index files).  Idempotent. */
int bw_repo_load_index(struct bw_repo *r) BW_WUR;
/* Load and decode a tree blob. */
int bw_repo_load_tree(struct bw_repo *r, const struct bw_id *id,
                      struct bw_tree *out) BW_WUR;
/* Load a blob's plaintext (data or tree) into out (replaced). */
int bw_repo_load_blob(struct bw_repo *r, const struct bw_id *id,
                      struct bw_buf *out) BW_WUR;
int bw_repo_has_blob(struct bw_repo *r, const struct bw_id *id);

/* All snapshots, sorted oldest first.  Damaged snapshot objects are
 * reported with bw_warn and skipped. Free with bw_snapshots_free. */
int bw_repo_snapshots(struct bw_repo *r, struct bw_snapshot **out,
                      size_t *n) BW_WUR;
void bw_snapshots_free(struct bw_snapshot *s, size_t n);
/* "latest", or a unique hex prefix of a snapshot ID.  With host/path
 * filters (NULL = any) "latest" picks the newest matching one. */
int bw_repo_find_snapshot(struct bw_repo *r, const char *spec,
                          const char *host, const char *path,
                          struct bw_snapshot *out) BW_WUR;
int bw_repo_save_snapshot(struct bw_repo *r, struct bw_snapshot *s) BW_WUR;
int bw_repo_remove_snapshot(struct bw_repo *r, const struct bw_id *id) BW_WUR;

/* Raw object access for `cat` and debugging.
 * type: "config", "key", "pack", "index", "snapshot", "lock", "plan".
 * Decrypts everything but packs and config (which are returned as stored). */
int bw_repo_cat(struct bw_repo *r, const char *type, const char *name,
                struct bw_buf *out) BW_WUR;

/* ---- backup ------------------------------------------------------------------ */
struct bw_progress {
	uint64_t files_done, files_total;
	uint64_t bytes_done, bytes_total;
	uint64_t errors;
	const char *current; /* may be NULL; valid during the callback only */
	int final;
};
typedef void (*bw_progress_fn)(const struct bw_progress *p, void *arg);

struct bw_backup_opts {
	const char *const *paths;
	size_t npaths;
	const char *const *excludes; /* glob patterns, fnmatch rules + '**' */
	size_t nexcludes;
	const char *const *tags;
	size_t ntags;
	const char *hostname; /* NULL: gethostname */
	int one_file_system;
	int dry_run;
	int force;            /* re-read every file, ignore the parent */
	const struct bw_id *parent; /* NULL: latest with same host and paths */
	int stdin_mode;       /* read stream from fd 0 */
	const char *stdin_name;
	int threads;          /* 0: number of CPUs */
	bw_progress_fn progress;
	void *progress_arg;
	/* called for each file that could not be read (message includes the path) */
	void (*on_error)(const char *path, const char *msg, void *arg);
	void *error_arg;
	int64_t time_ns;      /* 0: now */
};
/* On success out holds the new snapshot (also when dry_run: id is zero).
 * Unreadable files are reported through on_error, counted in
 * summary.errors and left out; the snapshot is still written. */
int bw_backup(struct bw_repo *r, const struct bw_backup_opts *o,
              struct bw_snapshot *out) BW_WUR;

/* ---- restore --------------------------------------------------------------- */
struct bw_restore_opts {
	const char *target;
	const char *const *includes; /* glob patterns; none = all */
	size_t nincludes;
	const char *const *excludes;
	size_t nexcludes;
	const char *subpath; /* restore only this path inside the snapshot */
	int verify;          /* re-read written files and compare blob IDs */
	int sparse;          /* leave holes for runs of zeros */
	int numeric_owner;   /* ignore user/group names */
	int no_owner;        /* do not chown (default when not root) */
	int overwrite;       /* replace existing files (default: fail if exists) */
	int threads;
	bw_progress_fn progress;
	void *progress_arg;
	void (*on_error)(const char *path, const char *msg, void *arg);
	void *error_arg;
};
struct bw_restore_stats {
	uint64_t files, dirs, others, bytes, errors, verified;
};
/* Restores everything it can; damaged blobs leave the affected files
 * flagged through on_error and the call returns BW_EDAMAGED. */
int bw_restore(struct bw_repo *r, const struct bw_snapshot *s,
               const struct bw_restore_opts *o, struct bw_restore_stats *st) BW_WUR;

/* ---- check ------------------------------------------------------------------- */
struct bw_check_opts {
	int read_data;
	uint32_t subset_n, subset_m; /* read packs in bucket n of m (1-based), 0 = all */
	void (*on_problem)(const char *what, const char *msg, void *arg);
	void *problem_arg;
	bw_progress_fn progress;
	void *progress_arg;
};
struct bw_check_stats {
	uint64_t packs, snapshots, trees, blobs, packs_read, problems;
	uint64_t unreferenced_packs; /* not an error: left by an interrupted backup */
};
/* BW_EDAMAGED if any problem was found; every problem goes to on_problem. */
int bw_check(struct bw_repo *r, const struct bw_check_opts *o,
             struct bw_check_stats *st) BW_WUR;

/* ---- prune ------------------------------------------------------------------- */
struct bw_prune_opts {
	int dry_run;
	int64_t stale_after_ns;    /* session locks older than this are dead */
	double max_unused;         /* repack packs with more unused than this fraction */
	bw_progress_fn progress;
	void *progress_arg;
};
struct bw_prune_stats {
	uint64_t packs_total, packs_deleted, packs_planned, packs_repacked;
	uint64_t blobs_kept, blobs_removed, bytes_freed, bytes_pending;
	uint64_t plans_completed, plans_waiting;
	uint64_t sessions_waiting; /* live sessions the waiting plans wait for */
};
int bw_prune(struct bw_repo *r, const struct bw_prune_opts *o,
             struct bw_prune_stats *st) BW_WUR;

/* ---- sessions (non-exclusive locks) ------------------------------------------ */
/* Every writer announces itself; prune uses this for two-phase deletion.
 * kind: "backup", "prune", ... Refreshes happen in bw_session_refresh. */
struct bw_session;
int bw_session_begin(struct bw_repo *r, const char *kind, struct bw_session **out) BW_WUR;
int bw_session_refresh(struct bw_session *s) BW_WUR;
void bw_session_end(struct bw_session *s);

#endif
