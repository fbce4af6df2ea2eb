/* bw-ransim (tests/guard/): what its four files share.  ransim_base.c
 * holds the helpers, the keyed transform's crypto, the safe opening of
 * files below a marked root and the log; ransim_variants.c the transforms
 * and the damage variants; ransim_decrypt.c decrypt; ransim.c the walk,
 * the workers, attack, init and the command line.  The safety rules are
 * at the top of ransim.c. */
#ifndef BW_RANSIM_H
#define BW_RANSIM_H

#include <bulwark/core.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/io_uring.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MARKER_NAME ".bw-ransim-marker"
#define MARKER_MAGIC "bw-ransim marker v1: scratch tree, bw-ransim may damage every file below"
#define NOTE_NAME "HOW_TO_RESTORE_FILES.txt"
#define NOTE_MAGIC "bw-ransim ransom note v1"
#define TMP_PREFIX ".bwrtmp."
#define FIXED_EXT ".bwlocked"
#define DEFAULT_KEY "bulwark-ransim-fixed-test-key-32" /* 32 bytes, public */

#define RC_OK 0
#define RC_ERR 1
#define RC_USAGE 2
#define RC_SKIP 77

/* internal negative codes next to -errno values */
#define R_SKIP (-100000)   /* feature not available here: exit 77 */
#define E_MARKER (-100001) /* the file is the marker */
#define E_NOTREG (-100002) /* not a regular file */
#define E_SHORT (-100003)  /* file shrank while being read */
#define E_B64 (-100004)    /* not base64 ciphertext */
#define E_PATH (-100005)   /* not a plain relative path */

#define CHUNK ((size_t)1 << 20)
#define WHOLE_MAX ((uint64_t)1 << 30) /* largest file read whole */
#define HEADER_LEN 4096
#define NOFM_BLOCK 65536
#define MAX_DEPTH 64
#define B64_KEEP 16

struct job;
enum vclass { VC_FULL, VC_HEADER, VC_STRIPES, VC_NOFM, VC_PERCENT, VC_B64, VC_WIPE };
enum order { ORD_DFS, ORD_BFS, ORD_RANDOM, ORD_SIZE, ORD_REVERSE };
enum mode { M_SEQ, M_FORK, M_THREADS, M_POOL, M_EXECRELAY };
enum cmd { CMD_INIT, CMD_ATTACK, CMD_DECRYPT };
enum walk_kind { W_ATTACK, W_ALL, W_SUFFIX };

struct variant {
	const char *name;
	int (*fn)(struct job *j);
	enum vclass cls;
	int oflags;  /* how the attack opens the file before calling fn */
	int renames; /* the damaged file ends up as NAME+ext */
	const char *help;
};

struct opts {
	enum cmd cmd;
	const char *root;
	const struct variant *variant;
	uint8_t key[32];
	char ext[40]; /* "" for --ext none */
	int ext_random, note, delbak, quiet, preopen, script, internal;
	int child_setsid; /* --setsid: forked helpers start sessions of their own */
	enum order order;
	enum mode mode;
	int mode_set;
	unsigned workers, batch, n, m, percent;
	uint64_t max_files, min_size, max_size, delay_ms, preopen_wait_ms, seed;
	const char *only, *log, *from_log;
	int child_files, child_report;
};

struct xst {
	mode_t mode;
	uint64_t size, mnt;
	dev_t dev;
	ino_t ino;
	nlink_t nlink;
	int has_mnt;
};

struct counters { /* in MAP_SHARED memory: workers may be processes */
	uint64_t files, bytes, errors, deleted;
	int skip;
};

struct ctx {
	struct opts *o;
	char real[PATH_MAX];
	char logpath[PATH_MAX];
	char exe[PATH_MAX];
	int rootfd, logfd;
	struct xst root;
	dev_t marker_dev;
	ino_t marker_ino;
	struct counters *cnt;
};

struct target {
	char *rel;
	uint64_t size;
	unsigned depth;
	size_t seq;
	int fd; /* --preopen: already open O_RDWR, else -1 */
};
struct tlist {
	struct target *v;
	size_t n, cap;
};
struct slist {
	char **v;
	size_t n, cap;
};

struct job {
	struct ctx *c;
	const char *rel; /* original path: the nonce comes from it */
	const char *base;
	int pdir, fd, preopened;
	uint64_t size;
	mode_t mode;
	uint8_t nonce[crypto_stream_chacha20_NONCEBYTES];
	int64_t t_first;
};

struct uring {
	int fd;
	void *sq, *cq;
	size_t sq_len, cq_len, sqes_len;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
	unsigned *sq_head, *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
};

extern uint64_t prng_state;
extern const struct variant variants[];
extern const size_t nvariants;

/* ransim_base.c */
__attribute__((format(printf, 1, 2))) void errmsg(const char *fmt, ...);
const char *why(int r);
int64_t now_ns(void);
void sleep_ms(uint64_t ms);
int write_all(int fd, const void *p, size_t n);
int pwrite_all(int fd, const void *p, size_t n, uint64_t off);
int pread_all(int fd, void *p, size_t n, uint64_t off);
int parse_u64(const char *s, uint64_t *out);
int has_suffix(const char *s, const char *suf);
int is_backup_name(const char *name);
char *join(const char *dir, const char *name);
int slist_push(struct slist *l, const char *s);
void slist_free(struct slist *l);
int tlist_push(struct tlist *l, char *rel, uint64_t size, unsigned depth);
void tlist_free(struct tlist *l);
int cmp_str(const void *a, const void *b);
uint64_t prng_next(void);
void nonce_for(const char *rel, uint8_t nonce[crypto_stream_chacha20_NONCEBYTES]);
void ks_xor(const struct job *j, uint8_t *buf, size_t len, uint64_t off);
int xstat(int dfd, const char *name, struct xst *st);
int in_root_fs(const struct ctx *c, const struct xst *st);
int open_root(struct ctx *c, const char *root, int need_marker);
int open_parent(struct ctx *c, const char *rel, const char **base);
int job_end(struct job *j, int r); /* counts r, closes j's fds, returns r */
int open_dir(struct ctx *c, const char *rel);
int check_file(const struct ctx *c, const struct xst *st);
int open_target(struct ctx *c, int pdir, const char *base, int flags, struct xst *st);
int open_log(struct ctx *c, const char *path, int trunc);
void log_file(struct ctx *c, int64_t t0, int64_t t1, const char *rel);
void job_mark(struct job *j);

/* ransim_variants.c */
int xform_chunks(struct job *j, int fd, enum vclass cls);
int read_whole(struct job *j, uint8_t **out);
void uring_free(struct uring *u);
int uring_init(struct uring *u);
int v_iouring(struct job *j);
const struct variant *find_variant(const char *name);

/* ransim.c */
struct walk {
	struct ctx *c;
	struct tlist *t, *bak; /* bak: backups to delete first, or NULL */
	struct slist *dirs;    /* visited directories, "" for ROOT */
	enum walk_kind kind;
};
int walk_tree(struct walk *w);
/* count one file's result in the shared counters */
void count(struct ctx *c, int r, uint64_t bytes);
void summary(struct ctx *c, const char *what);

/* ransim_decrypt.c */
int cmd_decrypt(struct ctx *c);

#endif
