/* The guard's private shared state: the engine, the inode table, the
 * per-tree behaviour scores, the vault and the journal. */
#ifndef BW_GUARD_INT_H
#define BW_GUARD_INT_H

#include <bulwark/guard.h>

#include "proc.h"
#include "zcopy.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

/* fanotify bits newer than Debian 12's kernel headers (Linux 6.14+). */
#ifndef FAN_PRE_ACCESS
#define FAN_PRE_ACCESS 0x00100000
#endif
#ifndef FAN_CLASS_PRE_CONTENT
#define FAN_CLASS_PRE_CONTENT 0x08
#endif
#ifndef FAN_EVENT_INFO_TYPE_RANGE
#define FAN_EVENT_INFO_TYPE_RANGE 6
#endif
#ifndef FAN_RENAME
#define FAN_RENAME 0x10000000
#endif
#ifndef FAN_REPORT_TARGET_FID
#define FAN_REPORT_TARGET_FID 0x00001000
#endif
#ifndef FAN_EVENT_INFO_TYPE_OLD_DFID_NAME
#define FAN_EVENT_INFO_TYPE_OLD_DFID_NAME 10
#define FAN_EVENT_INFO_TYPE_NEW_DFID_NAME 12
#endif

/* One tree's copy of a file in the file's current write episode
 * (episode.c). */
struct gi_wcopy {
	pid_t sid;
	int copied;       /* the whole old content is in the vault */
	int64_t ns;       /* copies/<ns>-<ino> or segment <ns>.seg; 0: the file
	                     was empty; -1: nothing copied yet */
	int64_t off;      /* offset in the segment; -1 = a file of its own */
	uint64_t size;    /* the file's size when the copy began */
	int z;            /* compressed (zcopy.h); ranged copies never are */
	int own;          /* nothing copied: the file is its maker's own output
	                     (see own_rewrite in guard.c); ns is 0 */
	/* ranged copies (files over GI_PACK_MAX): pages copied so far */
	uint64_t *pages;  /* bitmap of 4 KiB pages; NULL: not ranged */
	uint64_t npages, ncopied;
	int vfd;          /* the ranged copy's file, or -1 */
};

/* What the guard knows of one inode of a protected file system. */
struct gi_inode {
	uint64_t ino;     /* 0 = free slot */
	int writers;      /* open file descriptions with write access */
	int hold;         /* fd + 1 of the descriptor the guard holds on it */
	pid_t born_sid;   /* the tree that created it (its own files are not lost) */
	pid_t born_pid;   /* and the process (what it deletes itself is not copied) */
	int64_t born_ns;  /* when the guard saw it created (CLOCK_BOOTTIME) */
	int born_only;    /* nobody but born_pid has opened it for writing since:
	                     that process's rewrites of it need no copy */
	pid_t early_writer;/* who wrote it before its creation was told: one
	                     process, or -1 for more than one */
	int preopened;    /* open for writing before the guard: FAN_MODIFY watched */
	int64_t last_mod_ns;
	int write_ignored;/* an ignore mark skips its pre-content events: every
	                     writer has its copy, or there is no writer */
	int read_watch;   /* no writer: FAN_MODIFY watched (truncate(2) by name) */
	uint64_t rsize;   /* its size when it was last seen with no writer */
	struct gi_wcopy *wc; /* the episode's copies, one per writing tree */
	int nwc, wccap;
	uint64_t events;  /* pre-content events while a writer had no copy */
	int snapped;      /* an episode of it ended its ranged copies with a
	                     snapshot: later ones copy it whole at once */
};

/* Behaviour of one process tree (keyed by session). */
#define GT_EVIDENCE 16
struct gi_tree {
	pid_t sid;            /* 0 = free slot */
	int64_t first_ns, last_ns, first_bad_ns;
	double score, released_score;
	int damaged, cipher_new, deleted_read, renamed_ext, notes, canary;
	int pairs;            /* ciphertext-like new files matched to lost originals */
	struct gi_half { uint64_t size, ino, lost_ino; char base[64]; } half_cipher[8], half_lost[8];
	int nhalf_cipher, nhalf_lost;
	int wiped;
	int frozen, condemned;
	pid_t spawner;        /* the process that started the session, or 0 */
	int spawner_stopped;  /* frozen with it (sibling evidence): resume on release */
	int64_t done_ns;      /* handled: late evidence is ignored for a while */
	int pending;          /* its closed files still waiting for analysis */
	int backlog;          /* of those, rewrites of files that had content */
	struct bw_pidset members;    /* processes that did something */
	char evidence[GT_EVIDENCE][512];
	int nevidence;
	char note_name[256];
	int note_dirs;
};

struct gi_mount {
	char path[4096];      /* mount point of the protected file system */
	dev_t dev;
	int mount_fd;         /* for open_by_handle_at */
};

/* Path hash -> inode of the files the guard has seen, so that a rename
 * over an existing name tells which inode it replaced. */
struct gi_pathent {
	uint64_t h;    /* 0 = free */
	uint64_t ino;
	dev_t dev;
};
struct gi_pathmap {
	struct gi_pathent *v;
	size_t cap, n;
};

struct bw_guard {
	struct bw_guard_policy pol;
	pid_t self;
	struct stat self_exe;
	int perm_fd, name_fd;
	struct gi_mount mounts[BW_GUARD_MAX_PROTECT];
	int nmounts;
	int journal_fd, alert_fd, copies_fd;
	int seg_fd;               /* the segment small copies are appended to */
	int64_t seg_ns;
	uint64_t seg_off;
	uint8_t *copybuf;         /* GI_PACK_MAX bytes, see gi_copybuf */
	struct gz_writer gz;      /* for compressed copies (lock held) */
	char (*pre_paths)[4096]; /* files open for writing before the marks */
	int npre;
	char copies_path[4200];

	pthread_mutex_t lock;     /* inodes, trees, vault_bytes */
	struct gi_inode *inodes;
	size_t inode_cap, inode_n;
	struct gi_pathmap paths;
	struct gi_tree trees[128];
	uint64_t vault_bytes, copies_n;

	/* who started recent sessions: a session leader's parent in another
	 * session (a ring; seen when the leader first acts) */
	pthread_mutex_t spawn_lock;
	struct gi_spawn { pid_t sid, spawner; int64_t ns; } spawns[256];
	unsigned spawn_next;
	/* sessions killed lately (under lock): late evidence from them is
	 * ignored */
	struct { pid_t sid; int64_t ns; } killed[512];
	unsigned killed_next;

	/* close-write analysis queue: fds handed from the permission thread */
	pthread_mutex_t qlock;
	pthread_cond_t qcond;
	struct gi_job *q;
	size_t qhead, qtail, qcap;

	/* trees to respond to, handed to the responder thread (under lock) */
	pthread_cond_t resp_cond;
	pthread_cond_t verdict_cond; /* an analysis finished */
	pid_t resp_q[32];
	int resp_n;
	volatile int names_busy, resp_done, analysis_busy;

	void (*alert_cb)(const char *line, void *arg);
	void *alert_arg;
	volatile int *stop;
	int64_t started_ns;
	int gap_reported, clean_stop;
	uint64_t events, allowed, denied, copies, links, overflows;
	uint64_t own_rewrites;    /* write episodes that needed no copy (own_rewrite) */
	/* permission-group events by kind: opens, pre-content reads and
	 * writes (as told by the blocked call), closes after writing */
	uint64_t ev_open, ev_read, ev_write, ev_close;
	uint64_t nheld, hold_max, unheld;
	uint64_t verdict_n;
	char verdicts[8][4096];   /* summaries of recent verdicts, a ring */
	uint64_t canary_ino[BW_GUARD_MAX_PROTECT];
	dev_t canary_dev[BW_GUARD_MAX_PROTECT];
	int ncanary;
};

/* A byte range of a ranged copy. */
struct gi_run { uint64_t at, len; };
#define GI_JOB_RUNS 64

struct gi_job {
	int fd;
	pid_t tgid, tid, sid;
	int64_t copy_ns;  /* the copy before this episode; 0 new/empty; -1 none */
	int64_t copy_off; /* as in gi_wcopy */
	uint64_t copy_size;
	int copy_z;
	uint64_t ino;
	dev_t dev;
	struct gi_run *runs; /* a ranged copy: the ranges it holds (owned) */
	int nruns;
};

/* now + ms on CLOCK_REALTIME, for pthread_cond_timedwait */
static inline struct timespec gi_deadline(long ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* The path an open descriptor names (readlink of /proc/self/fd/N). */
int gi_fd_path(int fd, char *out, size_t n);
/* Queue a file for analysis: j->fd and j->runs pass to the queue; counts
 * as pending for j->sid. */
void gi_enqueue(struct bw_guard *g, struct gi_job *j);
/* Fill j's copy fields from w (lock held; w NULL: no copy).  0, or
 * BW_ENOMEM. */
int gi_job_copy(struct gi_job *j, const struct gi_wcopy *w);
void gi_job_release(struct gi_job *j);

/* inode table (lock held) */
struct gi_inode *gi_inode_get(struct bw_guard *g, uint64_t ino, int create);

uint64_t gi_path_hash(const char *path);
void gi_path_set(struct gi_pathmap *m, const char *path, dev_t dev, uint64_t ino);
/* removes and returns the inode (0 if unknown) */
uint64_t gi_path_take(struct gi_pathmap *m, const char *path, dev_t *dev);

/* vault.c */
int gi_vault_open(struct bw_guard *g);
/* Hold a descriptor on the file (taking ownership of fd), so that its
 * content outlives an unlink or a rename over it; lock held. */
int gi_vault_hold(struct bw_guard *g, struct gi_inode *in, int fd,
                  const struct stat *st, const char *path, pid_t pid);
/* The file at path is being deleted or replaced: copy it from the held
 * descriptor and let go; returns 1 if its content was real (not already
 * ciphertext or an archive).  Lock not held. */
int gi_vault_release(struct bw_guard *g, uint64_t ino, const char *path,
                     pid_t pid, pid_t sid, int copy, uint64_t *size);
/* Copy a file's content to the vault before it changes (lock held).
 * Small files are appended to the current segment (one file creation per
 * 64 MiB instead of one per copy: ext4's inode allocator is the cost);
 * larger ones get a compressed copy of their own (zcopy.h).  Sets
 * w->ns/off/size. */
#define GI_PACK_MAX (1u << 20)
int gi_vault_copy(struct bw_guard *g, int fd, const struct stat *st,
                  const char *path, pid_t pid, struct gi_wcopy *w);
/* Copy size bytes from in to out (both at offset 0) in the kernel, data
 * regions only: holes stay holes (restores of uncompressed copies). */
int gi_copy_sparse(int in, int out, uint64_t size) BW_WUR;
/* Write the runs of n bytes at buf that are not 4 KiB blocks of zeros to
 * out at offset at; *stored (if not NULL) grows by the bytes written. */
int gi_write_nonzero(int out, const uint8_t *buf, size_t n, uint64_t at,
                     uint64_t *stored) BW_WUR;
/* Whether the n bytes at p are all zero. */
int gi_all_zero(const uint8_t *p, size_t n);
/* The permission thread's copy buffer (GI_PACK_MAX bytes), made on first
 * use; NULL if out of memory. */
uint8_t *gi_copybuf(struct bw_guard *g);
int gi_vault_copy_path(struct bw_guard *g, int64_t ns, uint64_t ino, int64_t off,
                       char *out, size_t n);
void gi_vault_maintain(struct bw_guard *g);
int gi_scan_tree(struct bw_guard *g, struct gi_mount *m, const char *root);
int gi_preopened_scan(struct bw_guard *g);

/* journal.c: one JSON line per change */
void gi_journal(struct bw_guard *g, const char *op, pid_t pid,
                const char *path, const char *to, const struct stat *st,
                const char *vault);
/* a copy entry; off >= 0: packed at that offset of the segment vault;
 * ranged: the vault holds only the ranges of the "range" entries after it;
 * z: compressed (zcopy.h) */
void gi_journal_copy(struct bw_guard *g, pid_t pid, const char *path,
                     const struct stat *st, const char *vault, int64_t off,
                     int ranged, int z);
/* len bytes at offset at of the file were copied to the ranged copy vault */
void gi_journal_range(struct bw_guard *g, pid_t pid, const char *path,
                      const struct stat *st, const char *vault, uint64_t at,
                      uint64_t len);

/* episode.c (lock held) */
struct gi_wcopy *gi_wc_find(struct gi_inode *in, pid_t sid);
/* find, or add with nothing copied; NULL when out of memory */
struct gi_wcopy *gi_wc_add(struct gi_inode *in, pid_t sid);
int gi_wc_all_copied(const struct gi_inode *in);
/* the episode is over: forget its copies (the vault keeps them) */
void gi_wc_end(struct gi_inode *in);
/* Before a write by w's tree of [at, at + count) (count 0: to the end,
 * a truncation; no range known: the whole file): copy what it needs. */
int gi_wc_before_write(struct bw_guard *g, int fd, const struct stat *st,
                       const char *path, pid_t pid, struct gi_wcopy *w,
                       int have_range, uint64_t at, uint64_t count);
/* A pre-content event (read or write) while some writer lacks a whole
 * copy: when they have cost as much as a copy, snapshot the file for all
 * of them (path NULL: found from fd when needed).  0 or an error. */
int gi_wc_event(struct bw_guard *g, int fd, const struct stat *st,
                const char *path, struct gi_inode *in);
/* The ranges a ranged copy holds, at most max of them and budget bytes. */
int gi_wc_runs(const struct gi_wcopy *w, struct gi_run *out, int max, uint64_t budget);

/* score.c */
struct gi_tree *gi_tree_get(struct bw_guard *g, pid_t sid, int create);
/* Count an indicator for a tree (pts is unused). */
void gi_score_add(struct bw_guard *g, pid_t tgid, pid_t sid,
                  const char *what, double pts, const char *path);
/* One half of a pair: a ciphertext-like new file (cipher, its inode) or
 * a lost original (lost_ino; ino = the file renamed over it, 0 for a
 * delete).  Only matching halves count. */
void gi_score_pair(struct bw_guard *g, pid_t tgid, pid_t sid, int cipher,
                   uint64_t size, uint64_t ino, uint64_t lost_ino, const char *path);
int gi_tree_condemned(struct bw_guard *g, pid_t sid);
/* 1 if the tree has some evidence against it but no verdict yet */
int gi_tree_suspect(struct bw_guard *g, pid_t sid);
/* A tree this many rewrites ahead of their analysis waits before its next
 * one: without it a fast encryptor gets as far as the analysis lags. */
#define GI_BACKLOG_MAX 2
int gi_tree_backlogged(struct bw_guard *g, pid_t sid);
void gi_alert(struct bw_guard *g, const char *json_line);
void gi_state_write(struct bw_guard *g);
void gi_check_gap(struct bw_guard *g);
void *gi_responder_thread(void *arg);

/* names.c */
void *gi_names_thread(void *arg);
void *gi_analysis_thread(void *arg);

/* Every path in the protected trees; excludes the vault. */
int gi_path_protected(const struct bw_guard *g, const char *path);
struct gi_mount *gi_mount_of(struct bw_guard *g, dev_t dev);
/* is this inode one of the guard's canary files? */
int gi_is_canary(const struct bw_guard *g, uint64_t ino);
void gi_canary_gone(struct bw_guard *g, uint64_t ino);
/* 1 if trusted, 0 if not; caches by executable identity */
int gi_trusted(struct bw_guard *g, pid_t tgid);
pid_t gi_sid_of(struct bw_guard *g, pid_t pid);
int gi_is_guard_ancestor(struct bw_guard *g, pid_t pid);
/* Sessions that spawner started since after (up to max, into out); *first
 * is lowered to the earliest start seen. */
size_t gi_spawned_by(struct bw_guard *g, pid_t spawner, int64_t after,
                     pid_t *out, size_t max, int64_t *first);
/* The process that started session sid (see note_spawner), or 0. */
pid_t gi_spawner_of(struct bw_guard *g, pid_t sid);

#endif
