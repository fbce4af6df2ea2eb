/* The guard engine: set-up, the permission thread and the run loop.
 *
 * Three fanotify views of each protected file system:
 * - the permission group (FAN_CLASS_PRE_CONTENT, a mount mark) gets
 *   FAN_OPEN_PERM and FAN_PRE_ACCESS before opens and before every read,
 *   write, truncate, fallocate, mmap and io_uring write, plus
 *   FAN_CLOSE_WRITE.  This thread holds a descriptor on new files, copies
 *   a file's old content before its first write, and denies writes of a
 *   condemned tree.  It never waits for the other threads.
 * - the name group (notification, FID-based, a file system mark) reports
 *   creates, deletes and renames (names.c).
 * - closed files go to the analysis thread (names.c), which compares the
 *   old copy with the new content and scores the writer's tree.
 * See docs/internals/guard.md. */
#include "guard_int.h"
#include "journal.h"

#include <errno.h>
#include <linux/falloc.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define SELF_CACHE 4096

/* per-thread-id cache: thread -> process, session, trust */
struct tcache {
	pid_t tid, tgid, sid;
	dev_t exe_dev;
	ino_t exe_ino;
	int trusted;
	int64_t t;
};
static struct tcache tcache[SELF_CACHE];

struct gi_mount *gi_mount_of(struct bw_guard *g, dev_t dev)
{
	for (int i = 0; i < g->nmounts; i++)
		if (g->mounts[i].dev == dev)
			return &g->mounts[i];
	return NULL;
}

int gi_path_protected(const struct bw_guard *g, const char *path)
{
	for (int i = 0; i < g->pol.nprotect; i++) {
		const char *p = g->pol.protect[i];
		size_t n = strlen(p);
		if (n == 1 && p[0] == '/')
			return 1;
		if (!strncmp(path, p, n) && (path[n] == '/' || path[n] == 0))
			return 1;
	}
	return 0;
}

int gi_is_canary(const struct bw_guard *g, uint64_t ino)
{
	for (int i = 0; i < g->ncanary; i++)
		if (ino && g->canary_ino[i] == ino)
			return 1;
	return 0;
}

void gi_canary_gone(struct bw_guard *g, uint64_t ino)
{
	for (int i = 0; i < g->ncanary; i++)
		if (g->canary_ino[i] == ino)
			g->canary_ino[i] = 0;
}

/* trust by path and content hash; the hash is cached per executable
 * identity, so a replaced binary is hashed again */
struct hcache {
	dev_t dev;
	ino_t ino;
	struct timespec mtime;
	off_t size;
	int trusted;
};
static struct hcache hcache[64];
static pthread_mutex_t hlock = PTHREAD_MUTEX_INITIALIZER;

static int exe_trusted(struct bw_guard *g, pid_t tgid, const struct stat *est)
{
	if (est->st_dev == g->self_exe.st_dev && est->st_ino == g->self_exe.st_ino)
		return 1; /* another bulwark (rollback, status) */
	if (!g->pol.ntrust)
		return 0;
	pthread_mutex_lock(&hlock);
	for (size_t i = 0; i < sizeof hcache / sizeof *hcache; i++) {
		struct hcache *h = &hcache[i];
		if (h->ino == est->st_ino && h->dev == est->st_dev &&
		    h->size == est->st_size &&
		    h->mtime.tv_sec == est->st_mtim.tv_sec &&
		    h->mtime.tv_nsec == est->st_mtim.tv_nsec) {
			int t = h->trusted;
			pthread_mutex_unlock(&hlock);
			return t;
		}
	}
	pthread_mutex_unlock(&hlock);
	char exe[4096];
	if (bw_proc_exe(tgid, exe, sizeof exe))
		return 0;
	int trusted = 0;
	for (int i = 0; i < g->pol.ntrust && !trusted; i++) {
		struct bw_guard_trust *t = &g->pol.trust[i];
		if (strcmp(t->path, exe))
			continue;
		if (t->any_hash) {
			trusted = 1;
			break;
		}
		char hex[65], want[65], lp[64];
		snprintf(lp, sizeof lp, "/proc/%d/exe", (int)tgid);
		bw_hex_encode(t->sha256, 32, want);
		if (bw_guard_file_sha256(lp, hex) == 0 && !strcmp(hex, want))
			trusted = 1;
	}
	pthread_mutex_lock(&hlock);
	static unsigned next;
	struct hcache *h = &hcache[next++ % (sizeof hcache / sizeof *hcache)];
	h->dev = est->st_dev;
	h->ino = est->st_ino;
	h->size = est->st_size;
	h->mtime = est->st_mtim;
	h->trusted = trusted;
	pthread_mutex_unlock(&hlock);
	return trusted;
}

/* A session leader acts: remember the process that started it, when that
 * one belongs to another session and is not init or a guard ancestor.  A
 * program that puts every helper in a session of its own is then still
 * judged as one (gi_spawner_of). */
static void note_spawner(struct bw_guard *g, const struct bw_proc_info *lead)
{
	struct bw_proc_info pp;
	if (lead->ppid <= 1 || lead->ppid == g->self ||
	    bw_proc_info(lead->ppid, &pp) || pp.sid == lead->sid ||
	    gi_is_guard_ancestor(g, lead->ppid))
		return;
	pthread_mutex_lock(&g->spawn_lock);
	unsigned n = sizeof g->spawns / sizeof *g->spawns;
	int known = 0;
	for (unsigned i = 0; i < n && !known; i++)
		known = g->spawns[i].sid == lead->sid;
	if (!known) {
		g->spawns[g->spawn_next % n].sid = lead->sid;
		g->spawns[g->spawn_next % n].spawner = lead->ppid;
		g->spawns[g->spawn_next % n].ns = bw_now_ns();
		g->spawn_next++;
	}
	pthread_mutex_unlock(&g->spawn_lock);
}

size_t gi_spawned_by(struct bw_guard *g, pid_t spawner, int64_t after,
                     pid_t *out, size_t max, int64_t *first)
{
	size_t n = 0;
	pthread_mutex_lock(&g->spawn_lock);
	for (unsigned i = 0; i < sizeof g->spawns / sizeof *g->spawns && n < max; i++) {
		const struct gi_spawn *x = &g->spawns[i];
		if (!x->sid || x->spawner != spawner || x->ns < after)
			continue;
		out[n++] = x->sid;
		if (first && x->ns < *first)
			*first = x->ns;
	}
	pthread_mutex_unlock(&g->spawn_lock);
	return n;
}

pid_t gi_spawner_of(struct bw_guard *g, pid_t sid)
{
	pid_t r = 0;
	pthread_mutex_lock(&g->spawn_lock);
	for (unsigned i = 0; i < sizeof g->spawns / sizeof *g->spawns; i++)
		if (g->spawns[i].sid == sid) {
			r = g->spawns[i].spawner;
			break;
		}
	pthread_mutex_unlock(&g->spawn_lock);
	return r;
}

/* Resolve a thread id to its process, session and trust.  Cached per
 * thread and checked against the executable's identity, so an exec is
 * noticed at once. */
static int who(struct bw_guard *g, pid_t tid, pid_t *tgid, pid_t *sid,
               int *trusted)
{
	char lp[64];
	struct stat est;
	struct tcache *c = &tcache[(unsigned)tid % SELF_CACHE];
	int64_t now = bw_now_ns();
	/* untrusted and seen within a second: no look at /proc at all (an
	 * exec into a trusted program is noticed a second late, which only
	 * costs it a copy); trusted ones are re-checked on every event, so
	 * an exec out of a trusted program is seen at once */
	if (c->tid == tid && !c->trusted && now - c->t < 1000000000LL) {
		*tgid = c->tgid;
		*sid = c->sid;
		*trusted = 0;
		return 0;
	}
	snprintf(lp, sizeof lp, "/proc/%d/exe", (int)tid);
	if (stat(lp, &est))
		memset(&est, 0, sizeof est);
	/* a thread that is gone (its close came after its exit) keeps what
	 * was known of it */
	if (c->tid == tid && ((c->exe_dev == est.st_dev && c->exe_ino == est.st_ino &&
	                       now - c->t < 2000000000LL) || !est.st_ino)) {
		*tgid = c->tgid;
		*sid = c->sid;
		*trusted = c->trusted;
		return 0;
	}
	pid_t tg = bw_proc_tgid(tid);
	if (tg <= 0)
		tg = tid;
	struct bw_proc_info pi;
	int gone = bw_proc_info(tg, &pi) != 0;
	pid_t s = gone ? tg : pi.sid;
	if (!gone && s == tg)
		note_spawner(g, &pi);
	int tr = est.st_ino ? exe_trusted(g, tg, &est) : 0;
	c->tid = tid;
	c->tgid = tg;
	c->sid = s ? s : tg;
	c->exe_dev = est.st_dev;
	c->exe_ino = est.st_ino;
	c->trusted = tr;
	c->t = now;
	*tgid = c->tgid;
	*sid = c->sid;
	*trusted = tr;
	return 0;
}

pid_t gi_sid_of(struct bw_guard *g, pid_t pid)
{
	pid_t tg, sid;
	int tr;
	who(g, pid, &tg, &sid, &tr);
	return sid;
}

int gi_trusted(struct bw_guard *g, pid_t tgid)
{
	pid_t tg, sid;
	int tr;
	who(g, tgid, &tg, &sid, &tr);
	return tr;
}

/* Does the fd number fdno of thread tid refer to inode ino? */
static int fd_is_inode(pid_t tid, unsigned long fdno, int evfd)
{
	char lp[64];
	struct stat fst, st;
	snprintf(lp, sizeof lp, "/proc/%d/fd/%lu", (int)tid, fdno);
	return fstat(evfd, &st) || (!stat(lp, &fst) && fst.st_ino == st.st_ino &&
	                            fst.st_dev == st.st_dev);
}

/* Is the thread's blocked system call a write to this file (1), or a
 * read (0)?  Unknown calls count as writes: a copy too many costs
 * time, a copy too few costs a file. */
static int access_is_write(pid_t tid, int evfd, long *nrp, unsigned long *a)
{
	long nr;
	*nrp = -1;
	if (bw_proc_syscall(tid, &nr, a) || nr < 0)
		return 1;
	*nrp = nr;
	switch (nr) {
	case SYS_read: case SYS_pread64: case SYS_readv: case SYS_preadv:
	case SYS_preadv2: case SYS_execve: case SYS_execveat:
		return 0;
	case SYS_mmap:
		return (a[2] & PROT_WRITE) && (a[3] & MAP_SHARED);
	case SYS_sendfile:     /* sendfile(out, in, ...) */
		return fd_is_inode(tid, a[0], evfd);
	case SYS_copy_file_range: /* (in, off_in, out, off_out, ...) */
		return fd_is_inode(tid, a[2], evfd);
	case SYS_splice:       /* (in, off_in, out, off_out, ...) */
		return fd_is_inode(tid, a[2], evfd);
	default:
		return 1;
	}
}

/* The flags of the open(2) the thread is blocked in; -1 if unknown. */
static long open_flags(pid_t tid)
{
	long nr;
	unsigned long a[6];
	if (bw_proc_syscall(tid, &nr, a) || nr < 0)
		return -1;
	switch (nr) {
	case SYS_open: return (long)a[1];
	case SYS_openat: return (long)a[2];
	case SYS_creat: return O_CREAT | O_WRONLY | O_TRUNC;
	case SYS_open_by_handle_at: return (long)a[2];
#ifdef SYS_openat2
	case SYS_openat2: {
		uint64_t how[3];
		struct iovec l = {how, sizeof how}, r = {(void *)a[2], sizeof how};
		pid_t tg = bw_proc_tgid(tid);
		if (process_vm_readv(tg > 0 ? tg : tid, &l, 1, &r, 1, 0) != sizeof how)
			return -1;
		return (long)how[0];
	}
#endif
	default: return -1;
	}
}

static void respond(struct bw_guard *g, int fd, uint32_t resp)
{
	struct fanotify_response r = {fd, resp};
	if (write(g->perm_fd, &r, sizeof r) != sizeof r)
		bw_warn("guard: fanotify response failed: %s", strerror(errno));
	if (resp == FAN_DENY)
		g->denied++;
	else
		g->allowed++;
}

int gi_fd_path(int fd, char *out, size_t n)
{
	char lp[64];
	snprintf(lp, sizeof lp, "/proc/self/fd/%d", fd);
	ssize_t k = readlink(lp, out, n - 1);
	if (k < 0)
		return BW_EIO;
	out[k] = 0;
	return 0;
}

/* Ignore the inode's pre-content events (on) or see them again; the
 * mark is changed only when in->write_ignored says it must (lock held). */
static void set_ignored(struct bw_guard *g, int fd, struct gi_inode *in, int on)
{
	if (!in->write_ignored == !on)
		return;
	unsigned fl = on ? FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | FAN_MARK_IGNORED_SURV_MODIFY
	                 : FAN_MARK_REMOVE | FAN_MARK_IGNORED_MASK;
	if (fanotify_mark(g->perm_fd, fl, FAN_PRE_ACCESS, fd, NULL) && on)
		bw_debug("guard: ignore mark: %s", strerror(errno));
	in->write_ignored = on;
}

/* Every tree writing the file has its copy: the rest of the episode
 * needs no event (lock held). */
static void ignore_if_copied(struct bw_guard *g, int fd, struct gi_inode *in)
{
	if (in->writers > 0 && gi_wc_all_copied(in))
		set_ignored(g, fd, in, 1);
}

int gi_job_copy(struct gi_job *j, const struct gi_wcopy *w)
{
	j->copy_ns = -1;
	j->copy_off = -1;
	j->copy_size = 0;
	j->copy_z = 0;
	j->runs = NULL;
	j->nruns = 0;
	if (!w || (!w->copied && !w->pages) || w->ns < 0)
		return 0;
	j->copy_ns = w->ns;
	j->copy_off = w->off;
	j->copy_size = w->size;
	j->copy_z = w->z;
	if (w->pages && w->ncopied < w->npages) {
		/* only the ranges written so far are in the copy */
		j->runs = malloc(GI_JOB_RUNS * sizeof *j->runs);
		if (!j->runs) {
			j->copy_ns = -1;
			return BW_ENOMEM;
		}
		j->nruns = gi_wc_runs(w, j->runs, GI_JOB_RUNS, 1u << 20);
		if (!j->nruns) {
			free(j->runs);
			j->runs = NULL;
			j->copy_ns = -1;
		}
	}
	return 0;
}

void gi_job_release(struct gi_job *j)
{
	if (j->fd >= 0)
		close(j->fd);
	j->fd = -1;
	free(j->runs);
	j->runs = NULL;
}

/* A file nobody has open for writing: its pre-content events can only be
 * reads, or a truncate(2) by name.  Unless reads are strict, ignore them
 * all and watch the file for modification instead, which only that
 * truncate can cause now (lock held). */
static void read_mode(struct bw_guard *g, int fd, struct gi_inode *in,
                      const struct stat *st)
{
	if (g->pol.strict_reads || in->writers > 0)
		return;
	in->rsize = (uint64_t)st->st_size;
	if (!in->read_watch && !in->preopened) {
		/* the name group: a truncate by name has no file, and only a
		 * FID group is told of changes without one */
		if (fanotify_mark(g->name_fd, FAN_MARK_ADD, FAN_MODIFY, fd, NULL)) {
			bw_debug("guard: modify mark: %s", strerror(errno));
			return; /* no watch, no ignoring */
		}
		in->read_watch = 1;
	}
	set_ignored(g, fd, in, 1);
}

/* A write open: the end of read mode (lock held). */
static void write_mode(struct bw_guard *g, int fd, struct gi_inode *in)
{
	if (in->read_watch && !in->preopened)
		fanotify_mark(g->name_fd, FAN_MARK_REMOVE, FAN_MODIFY, fd, NULL);
	in->read_watch = 0;
}

static void enqueue_file(struct bw_guard *g, int fd, pid_t tgid, pid_t tid, pid_t sid,
                         struct gi_job *j, const struct stat *st)
{
	j->fd = fd;
	j->tgid = tgid;
	j->tid = tid;
	j->sid = sid;
	j->ino = st->st_ino;
	j->dev = st->st_dev;
	gi_enqueue(g, j);
}

void gi_enqueue(struct bw_guard *g, struct gi_job *j)
{
	pthread_mutex_lock(&g->qlock);
	if (g->qtail - g->qhead >= g->qcap) {
		pthread_mutex_unlock(&g->qlock);
		gi_job_release(j); /* queue full: the writer's other files still count */
		return;
	}
	pthread_mutex_lock(&g->lock);
	/* a rewrite is counted even for a tree with no evidence yet */
	struct gi_tree *t = gi_tree_get(g, j->sid, j->copy_ns > 0);
	if (t) {
		t->pending++;
		if (j->copy_ns > 0)
			t->backlog++;
	}
	pthread_mutex_unlock(&g->lock);
	g->q[g->qtail++ % g->qcap] = *j;
	pthread_cond_signal(&g->qcond);
	pthread_mutex_unlock(&g->qlock);
}

/* A suspect tree's next file waits (at most 100 ms) until the verdicts on
 * its earlier files are in: a fast encryptor gets no further than the
 * evidence allows.  Its own closed files are counted; name events
 * (deletes, renames) cannot be told apart before they are read, so those
 * are waited for only when the tree has written ciphertext-like new
 * files, the pattern that needs them.  A tree with no evidence waits only
 * when it is GI_BACKLOG_MAX rewrites ahead of the analysis (backlog), and
 * only until it is not. */
static void wait_for_verdicts(struct bw_guard *g, pid_t sid, int backlog)
{
	struct timespec until = gi_deadline(100);
	pthread_mutex_lock(&g->lock);
	for (;;) {
		struct gi_tree *t = gi_tree_get(g, sid, 0);
		if (!t || t->done_ns || (backlog && t->backlog < GI_BACKLOG_MAX))
			break;
		int names = 0;
		if (t->cipher_new) {
			struct pollfd p = {g->name_fd, POLLIN, 0};
			names = g->names_busy || poll(&p, 1, 0) > 0;
		}
		if (!t->pending && !names)
			break;
		if (names) {
			pthread_mutex_unlock(&g->lock);
			struct timespec ts = {0, 200 * 1000};
			nanosleep(&ts, NULL);
			pthread_mutex_lock(&g->lock);
			struct timespec now;
			clock_gettime(CLOCK_REALTIME, &now);
			if (now.tv_sec > until.tv_sec ||
			    (now.tv_sec == until.tv_sec && now.tv_nsec >= until.tv_nsec))
				break;
		} else if (pthread_cond_timedwait(&g->verdict_cond, &g->lock, &until)) {
			break;
		}
	}
	pthread_mutex_unlock(&g->lock);
}

/* The inode's entry, with a descriptor held on it from now (lock held). */
static struct gi_inode *hold_inode(struct bw_guard *g, int fd, const struct stat *st,
                                   const char *path, pid_t pid)
{
	struct gi_inode *in = gi_inode_get(g, st->st_ino, 1);
	if (in && !in->hold) {
		int hfd = dup(fd);
		if (hfd >= 0)
			gi_vault_hold(g, in, hfd, st, path, pid);
	}
	return in;
}

/* The range a pre-content event reports: 1 and at/count (count 0: to the
 * end of the file), or 0 when it carries none. */
static int event_range(const struct fanotify_event_metadata *m, uint64_t *at,
                       uint64_t *count)
{
	struct range_info {
		struct fanotify_event_info_header hdr;
		uint32_t pad;
		uint64_t offset, count;
	};
	const char *p = (const char *)m + m->metadata_len, *end = (const char *)m + m->event_len;
	while (p + sizeof(struct fanotify_event_info_header) <= end) {
		struct fanotify_event_info_header h;
		memcpy(&h, p, sizeof h);
		if (h.len < sizeof h || p + h.len > end)
			return 0;
		if (h.info_type == FAN_EVENT_INFO_TYPE_RANGE && h.len >= sizeof(struct range_info)) {
			struct range_info r;
			memcpy(&r, p, sizeof r);
			*at = r.offset;
			*count = r.count;
			return 1;
		}
		p += h.len;
	}
	return 0;
}

/* Whether a write episode of process tgid needs no copy of the file: it
 * made the file, nobody else has opened it for writing since, and it is
 * still that process (it started before the file was made, so its pid
 * was not reused).  All the file holds is its own output, and a rollback
 * of it removes what it made.  Per process, not per tree: a user's shell
 * session holds everything started from it, attacker included (lock
 * held). */
static int own_rewrite(const struct gi_inode *in, pid_t tgid)
{
	if (!in->born_only || in->born_pid != tgid || !in->born_ns)
		return 0;
	struct bw_proc_info pi;
	long hz = sysconf(_SC_CLK_TCK);
	if (hz <= 0 || bw_proc_info(tgid, &pi))
		return 0;
	return (int64_t)(pi.start * (uint64_t)(1000000000LL / hz)) < in->born_ns;
}

/* Process tgid opens the file for writing, or writes it (lock held). */
static void note_writer(struct gi_inode *in, pid_t tgid)
{
	if (!in->born_ns)
		/* its creation not told yet (the name group lags): remember
		 * whether anyone but one process wrote it meanwhile */
		in->early_writer = !in->early_writer || in->early_writer == tgid ? tgid : -1;
	else if (tgid != in->born_pid)
		in->born_only = 0;
}

/* Process tgid writes the file in tree w's episode (lock held): note the
 * writer, and when it rewrites a file of its own making (own_rewrite),
 * start the tree's episode without a copy, as for an empty file; 1 then.
 * Another process of the tree ends that: what the maker wrote is not its
 * own, so the tree needs a real copy after all. */
static int own_begin(struct bw_guard *g, struct gi_inode *in, struct gi_wcopy *w,
                     pid_t tgid, const char *path, const struct stat *st)
{
	note_writer(in, tgid);
	if (w && w->own && tgid != in->born_pid) {
		w->own = 0;
		w->copied = 0;
		w->ns = -1;
	}
	if (!w || w->copied || w->pages || st->st_size == 0 || in->writers > 1 ||
	    !own_rewrite(in, tgid))
		return 0;
	w->copied = 1;
	w->own = 1;
	w->ns = 0;
	w->off = -1;
	w->size = 0;
	g->own_rewrites++;
	gi_journal(g, "own", tgid, path, NULL, st, NULL);
	return 1;
}

/* One event of the permission group.  Owns m->fd. */
static void handle_perm(struct bw_guard *g, const struct fanotify_event_metadata *m)
{
	int fd = m->fd;
	uint32_t resp = FAN_ALLOW;
	int perm = (m->mask & (FAN_OPEN_PERM | FAN_PRE_ACCESS)) != 0;
	pid_t tid = m->pid, tgid, sid;
	int trusted;
	struct stat st;
	char path[4096];
	g->events++;

	if (fd < 0) {
		if (m->mask & FAN_Q_OVERFLOW)
			g->overflows++;
		return;
	}
	who(g, tid, &tgid, &sid, &trusted);
	long nr = -1;
	unsigned long sa[6] = {0};
	if ((m->mask & FAN_PRE_ACCESS) && !(m->mask & FAN_OPEN_PERM) &&
	    (tgid == g->self || trusted || !access_is_write(tid, fd, &nr, sa))) {
		/* reads, and everything the guard and trusted programs do; an
		 * episode whose writers lack copies pays for its reads too */
		g->ev_read++;
		if (tgid != g->self && !fstat(fd, &st)) {
			pthread_mutex_lock(&g->lock);
			struct gi_inode *in = gi_inode_get(g, st.st_ino, 0);
			if (in && in->writers > 0 && in->nwc && gi_wc_event(g, fd, &st, NULL, in) == 0)
				ignore_if_copied(g, fd, in);
			pthread_mutex_unlock(&g->lock);
			bw_err_clear();
		}
		respond(g, fd, FAN_ALLOW);
		close(fd);
		return;
	}
	if (m->mask & FAN_OPEN_PERM)
		g->ev_open++;
	else if (m->mask & FAN_PRE_ACCESS)
		g->ev_write++;
	else if (m->mask & FAN_CLOSE_WRITE)
		g->ev_close++;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		if (perm)
			respond(g, fd, FAN_ALLOW);
		close(fd);
		return;
	}
	struct gi_mount *mnt = gi_mount_of(g, st.st_dev);
	if ((m->mask & FAN_MODIFY) && !(m->mask & FAN_CLOSE_WRITE)) {
		/* a write through a descriptor opened before the guard: no
		 * permission event comes for it, so judge the file as it is
		 * being written (at most every 20 ms) */
		int64_t now = bw_now_ns();
		struct gi_job j = {.fd = -1, .copy_ns = -1};
		pthread_mutex_lock(&g->lock);
		struct gi_inode *in = gi_inode_get(g, st.st_ino, 0);
		if (in && in->preopened && now - in->last_mod_ns >= 20000000LL) {
			in->last_mod_ns = now;
			gi_job_copy(&j, gi_wc_find(in, sid));
		}
		pthread_mutex_unlock(&g->lock);
		if (j.copy_ns < 0 || tgid == g->self || trusted || !mnt) {
			gi_job_release(&j);
			close(fd);
			return;
		}
		enqueue_file(g, fd, tgid, tid, sid, &j, &st);
		return;
	}
	if (m->mask & FAN_CLOSE_WRITE) {
		struct gi_job j = {.fd = -1, .copy_ns = -1};
		int mine = tgid != g->self && !trusted && mnt;
		pthread_mutex_lock(&g->lock);
		struct gi_inode *in = gi_inode_get(g, st.st_ino, 0);
		if (in) {
			if (mine)
				gi_job_copy(&j, gi_wc_find(in, sid));
			if (in->writers > 0)
				in->writers--;
			if (in->writers == 0) {
				gi_wc_end(in); /* the write episode is over */
				if (g->pol.strict_reads)
					set_ignored(g, fd, in, 0);
				else
					read_mode(g, fd, in, &st);
			}
		}
		pthread_mutex_unlock(&g->lock);
		if (!mine || j.copy_ns < 0) {
			gi_job_release(&j);
			close(fd);
			return;
		}
		enqueue_file(g, fd, tgid, tid, sid, &j, &st);
		return;
	}
	if (!mnt || gi_fd_path(fd, path, sizeof path) || !gi_path_protected(g, path)) {
		respond(g, fd, FAN_ALLOW);
		close(fd);
		return;
	}
	if (tgid == g->self || trusted) {
		/* their files are held too: an untrusted program may delete them later */
		if (m->mask & FAN_OPEN_PERM) {
			pthread_mutex_lock(&g->lock);
			struct gi_inode *in = hold_inode(g, fd, &st, path, tgid);
			if (in && tgid != g->self)
				note_writer(in, tgid); /* a trusted one may write it */
			if (in)
				read_mode(g, fd, in, &st);
			pthread_mutex_unlock(&g->lock);
		}
		respond(g, fd, FAN_ALLOW);
		close(fd);
		return;
	}

	if (m->mask & FAN_OPEN_PERM) {
		long fl = open_flags(tid);
		int wr = fl < 0 || (fl & O_ACCMODE) != O_RDONLY || (fl & O_TRUNC);
		if (wr && gi_tree_suspect(g, sid))
			wait_for_verdicts(g, sid, 0);
		else if (wr && st.st_size > 0 && gi_tree_backlogged(g, sid))
			wait_for_verdicts(g, sid, 1);
		pthread_mutex_lock(&g->lock);
		struct gi_inode *in = hold_inode(g, fd, &st, path, tgid);
		struct gi_wcopy *w = NULL;
		int empty = 0;
		if (in && wr) {
			if (in->writers++ == 0)
				write_mode(g, fd, in);
			/* a tree new to the episode: its first write needs a copy,
			 * unless the process rewrites a file of its own making */
			w = gi_wc_add(in, sid);
			empty = own_begin(g, in, w, tgid, path, &st);
			/* unless the file is empty and nobody else writes it: then
			 * there is nothing to lose, and its writes need no event
			 * (what is written is judged at close, as a new file) */
			if (w && !w->copied && st.st_size == 0 && in->writers == 1 &&
			    gi_wc_before_write(g, fd, &st, path, tgid, w, 0, 0, 0) == 0) {
				empty = 1;
				/* a new file may reuse a deleted one's inode number,
				 * and with it a stale note of an ignore mark */
				in->write_ignored = 0;
			}
			if (!w || !w->copied)
				set_ignored(g, fd, in, 0);
			else
				ignore_if_copied(g, fd, in);
		}
		/* O_TRUNC empties the file before any pre-content event.  Other
		 * opens are copied at their first write, not here: that write's
		 * event is where a suspect tree waits for its verdicts, and a
		 * tree that opens every file before it writes any (--preopen)
		 * would otherwise get all of them event-free */
		if (w && !w->copied && fl >= 0 && (fl & O_TRUNC)) {
			if (gi_wc_before_write(g, fd, &st, path, tgid, w, 0, 0, 0) == 0) {
				/* the episode's writes need no further event */
				ignore_if_copied(g, fd, in);
			} else {
				bw_warn("guard: %s", bw_err_msg());
				bw_err_clear();
			}
		}
		if (in && !wr)
			read_mode(g, fd, in, &st);
		pthread_mutex_unlock(&g->lock);
		if (wr && gi_tree_condemned(g, sid))
			resp = FAN_DENY;
		else if (empty)
			gi_score_add(g, tgid, sid, NULL, 0, NULL); /* a member of its tree */
	} else if (m->mask & FAN_PRE_ACCESS) {
		pthread_mutex_lock(&g->lock);
		struct gi_inode *in = gi_inode_get(g, st.st_ino, 1);
		struct gi_wcopy *w = in ? gi_wc_find(in, sid) : NULL;
		int first = in && (!w || !w->copied);
		pthread_mutex_unlock(&g->lock);
		if (first && gi_tree_suspect(g, sid))
			wait_for_verdicts(g, sid, 0);
		else if (first && gi_tree_backlogged(g, sid))
			wait_for_verdicts(g, sid, 1);
		if (gi_tree_condemned(g, sid)) {
			respond(g, fd, FAN_DENY);
			close(fd);
			return;
		}
		uint64_t at = 0, count = 0;
		/* fallocate changes no byte when it only allocates, only its
		 * range when it punches or zeroes, and shifts everything after
		 * it when it collapses or inserts: copy all of it then */
		int falloc = nr == SYS_fallocate;
		unsigned long fmode = falloc ? sa[1] : 0;
		if (falloc && (fmode & ~(unsigned long)FALLOC_FL_KEEP_SIZE) == 0) {
			respond(g, fd, FAN_ALLOW);
			close(fd);
			return;
		}
		int ranged = event_range(m, &at, &count) &&
		             (!falloc || !(fmode & (FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE)));
		pthread_mutex_lock(&g->lock);
		in = gi_inode_get(g, st.st_ino, 1);
		/* a writer without a write open of its own (an inherited
		 * descriptor, truncate(2) by name) gets its copy too */
		w = in ? gi_wc_add(in, sid) : NULL;
		if (in)
			own_begin(g, in, w, tgid, path, &st); /* copied then, if own */
		if (w && !w->copied) {
			/* a file whose ranged copies once ended in a snapshot is
			 * read and written enough to be copied whole at once (not
			 * for an append: that changes nothing there was) */
			int whole = in->snapped && (!count || at < (uint64_t)st.st_size);
			if (gi_wc_before_write(g, fd, &st, path, tgid, w, ranged && !whole,
			                       at, count)) {
				bw_warn("guard: %s", bw_err_msg());
				bw_err_clear();
			}
		} else if (in && !w && st.st_size > 0) {
			/* no memory for the episode: copy anyway, every time */
			if (gi_vault_copy(g, fd, &st, path, tgid, NULL)) {
				bw_warn("guard: %s", bw_err_msg());
				bw_err_clear();
			}
		}
		if (in && in->writers > 0 && gi_wc_event(g, fd, &st, path, in)) {
			bw_warn("guard: %s", bw_err_msg());
			bw_err_clear();
		}
		if (in)
			ignore_if_copied(g, fd, in);
		if (in && in->writers == 0)
			gi_wc_end(in); /* no episode to remember it for */
		pthread_mutex_unlock(&g->lock);
		gi_score_add(g, tgid, sid, NULL, 0, NULL);
	}
	respond(g, fd, resp);
	close(fd);
}

static void *perm_thread(void *arg)
{
	struct bw_guard *g = arg;
	size_t bufsz = 64 * 1024;
	char *buf = malloc(bufsz);
	if (!buf)
		return NULL;
	/* runs until the responder is done: its rollback opens files here */
	while (!*g->stop || !g->resp_done) {
		struct pollfd p = {g->perm_fd, POLLIN, 0};
		int pr = poll(&p, 1, 200);
		if (pr <= 0)
			continue;
		ssize_t len = read(g->perm_fd, buf, bufsz);
		if (len <= 0)
			continue;
		const struct fanotify_event_metadata *m = (const void *)buf;
		for (; FAN_EVENT_OK(m, len); m = FAN_EVENT_NEXT(m, len))
			handle_perm(g, m);
	}
	free(buf);
	return NULL;
}

/* ---- set-up ------------------------------------------------------------ */

/* The mount point holding path: the longest mount point in mountinfo
 * that is a prefix of path and has the same device. */
static int find_mount(const char *path, dev_t dev, char *out, size_t n)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return BW_EIO;
	char line[8192];
	size_t best = 0;
	out[0] = 0;
	while (fgets(line, sizeof line, f)) {
		char mp[4096];
		/* id parent major:minor root mountpoint ... */
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1)
			continue;
		/* unescape \040 etc. */
		char un[4096];
		size_t k = 0;
		for (size_t i = 0; mp[i] && k + 1 < sizeof un; i++) {
			if (mp[i] == '\\' && mp[i + 1] && mp[i + 2] && mp[i + 3]) {
				un[k++] = (char)((mp[i + 1] - '0') * 64 + (mp[i + 2] - '0') * 8 +
				                 (mp[i + 3] - '0'));
				i += 3;
			} else {
				un[k++] = mp[i];
			}
		}
		un[k] = 0;
		size_t l = strlen(un);
		int prefix = (l == 1 && un[0] == '/') ||
		             (!strncmp(path, un, l) && (path[l] == '/' || path[l] == 0));
		struct stat st;
		if (!prefix || l < best || stat(un, &st) || st.st_dev != dev)
			continue;
		best = l;
		snprintf(out, n, "%s", un);
	}
	fclose(f);
	return out[0] ? 0 : BW_ENOENT;
}

static int setup_mount(struct bw_guard *g, const char *protect)
{
	struct stat st;
	if (stat(protect, &st) || !S_ISDIR(st.st_mode))
		return bw_errf(BW_ENOENT, "guard: %s is not a directory", protect);
	if (gi_mount_of(g, st.st_dev))
		return 0;
	struct gi_mount *m = &g->mounts[g->nmounts];
	memset(m, 0, sizeof *m);
	m->mount_fd = -1;
	if (find_mount(protect, st.st_dev, m->path, sizeof m->path))
		return bw_errf(BW_ENOENT, "guard: no mount point found for %s", protect);
	struct statfs sfs;
	if (!statfs(m->path, &sfs) && (sfs.f_type == 0x01021994 /* tmpfs */ ||
	                               sfs.f_type == 0x858458f6 /* ramfs */))
		return bw_errf(BW_EUNSUP,
		               "guard: %s is on tmpfs, where fanotify has no pre-content "
		               "events; protect a directory on ext4, xfs or btrfs", protect);
	m->dev = st.st_dev;
	m->mount_fd = open(m->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (m->mount_fd < 0)
		return bw_errf(BW_EIO, "guard: cannot open %s: %s", m->path, strerror(errno));
	g->nmounts++;
	return 0;
}

int bw_guard_new(const struct bw_guard_policy *p, struct bw_guard **out)
{
	int r;
	*out = NULL;
	if (geteuid() != 0)
		return bw_errf(BW_EPERM, "guard: fanotify permission events need root");
	if (p->nprotect < 1)
		return bw_errf(BW_EINVAL, "guard: nothing to protect (give --protect DIR)");
	struct bw_guard *g = calloc(1, sizeof *g);
	if (!g)
		return BW_ENOMEM;
	g->pol = *p;
	g->self = getpid();
	g->perm_fd = g->name_fd = g->journal_fd = g->alert_fd = g->copies_fd = -1;
	g->seg_fd = -1;
	g->started_ns = bw_now_ns();
	pthread_mutex_init(&g->lock, NULL);
	pthread_mutex_init(&g->spawn_lock, NULL);
	pthread_mutex_init(&g->qlock, NULL);
	pthread_cond_init(&g->qcond, NULL);
	pthread_cond_init(&g->resp_cond, NULL);
	pthread_cond_init(&g->verdict_cond, NULL);
	g->qcap = 4096;
	g->q = calloc(g->qcap, sizeof *g->q);
	if (!g->q) {
		r = BW_ENOMEM;
		goto fail;
	}
	stat("/proc/self/exe", &g->self_exe);
	for (int i = 0; i < p->nprotect; i++) {
		char rp[4096];
		if (!realpath(p->protect[i], rp)) {
			r = bw_errf(BW_ENOENT, "guard: %s: %s", p->protect[i], strerror(errno));
			goto fail;
		}
		snprintf(g->pol.protect[i], sizeof g->pol.protect[i], "%s", rp);
		if ((r = setup_mount(g, rp)))
			goto fail;
	}
	struct stat sst;
	if ((r = bw_mkdir_p(g->pol.state_dir, 0700))) {
		r = bw_errf(r, "guard: cannot create %s", g->pol.state_dir);
		goto fail;
	}
	if (stat(g->pol.state_dir, &sst) == 0 && gi_mount_of(g, sst.st_dev)) {
		r = bw_errf(BW_EINVAL,
		            "guard: the state directory %s is on a protected file system; "
		            "put it elsewhere (--state-dir): the guard never writes data "
		            "where it watches", g->pol.state_dir);
		goto fail;
	}
	if ((r = gi_vault_open(g)))
		goto fail;

	g->perm_fd = fanotify_init(FAN_CLASS_PRE_CONTENT | FAN_CLOEXEC | FAN_REPORT_TID |
	                           FAN_UNLIMITED_MARKS,
	                           O_RDONLY | O_LARGEFILE | O_CLOEXEC | O_NOATIME);
	if (g->perm_fd < 0) {
		r = bw_errf(BW_EUNSUP, "guard: fanotify_init: %s", strerror(errno));
		goto fail;
	}
	g->name_fd = fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_REPORT_DFID_NAME |
	                           FAN_REPORT_FID | FAN_REPORT_TARGET_FID |
	                           FAN_NONBLOCK, O_RDONLY | O_CLOEXEC);
	if (g->name_fd < 0) {
		r = bw_errf(BW_EUNSUP, "guard: fanotify_init (names): %s", strerror(errno));
		goto fail;
	}
	/* before the marks, so that our own opens are not waiting for us */
	int pre = gi_preopened_scan(g);
	if (pre > 0)
		bw_info("guard: %d files were open for writing before the guard started; "
		        "copied them", pre);
	/* one descriptor held per protected file, and some to work with */
	struct rlimit rl;
	g->hold_max = 262144;
	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rlim_t want = g->hold_max + 4096;
		if (rl.rlim_max < want)
			rl.rlim_max = want;
		rl.rlim_cur = want;
		if (setrlimit(RLIMIT_NOFILE, &rl) && !getrlimit(RLIMIT_NOFILE, &rl))
			g->hold_max = rl.rlim_cur > 8192 ? rl.rlim_cur - 4096 : rl.rlim_cur / 2;
	}
	int held = 0;
	for (int i = 0; i < g->pol.nprotect; i++) {
		struct stat st;
		if (stat(g->pol.protect[i], &st))
			continue;
		struct gi_mount *m = gi_mount_of(g, st.st_dev);
		int n = m ? gi_scan_tree(g, m, g->pol.protect[i]) : 0;
		if (n > 0)
			held += n;
	}
	bw_info("guard: holding %d files of %d tree(s)", held, g->pol.nprotect);
	for (int i = 0; i < g->nmounts; i++) {
		struct gi_mount *m = &g->mounts[i];
		if (fanotify_mark(g->perm_fd, FAN_MARK_ADD | FAN_MARK_MOUNT,
		                  FAN_OPEN_PERM | FAN_PRE_ACCESS | FAN_CLOSE_WRITE,
		                  AT_FDCWD, m->path)) {
			r = bw_errf(BW_EUNSUP,
			            "guard: cannot watch %s for pre-content events: %s "
			            "(needs Linux 6.14+ and a file system that supports them)",
			            m->path, strerror(errno));
			goto fail;
		}
		/* writes through descriptors opened before this mark raise no
		 * permission event: watch those files' modifications instead */
		for (int k = 0; k < g->npre; k++)
			if (fanotify_mark(g->perm_fd, FAN_MARK_ADD, FAN_MODIFY, AT_FDCWD,
			                  g->pre_paths[k]))
				bw_debug("guard: cannot watch %s for writes: %s", g->pre_paths[k],
				         strerror(errno));
		if (fanotify_mark(g->name_fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM,
		                  FAN_CREATE | FAN_DELETE | FAN_RENAME | FAN_ONDIR,
		                  AT_FDCWD, m->path)) {
			r = bw_errf(BW_EUNSUP, "guard: cannot watch names on %s: %s",
			            m->path, strerror(errno));
			goto fail;
		}
	}
	*out = g;
	return 0;
fail:
	bw_guard_free(g);
	return r;
}

void bw_guard_set_alert_cb(struct bw_guard *g,
                           void (*cb)(const char *json_line, void *arg), void *arg)
{
	g->alert_cb = cb;
	g->alert_arg = arg;
}

/* Canary files: documents nobody edits, placed where a ransomware walk
 * meets them early ('!' sorts first).  Any write, rename or delete of one
 * by an untrusted program is an indicator (not a verdict by itself). */
static void place_canaries(struct bw_guard *g)
{
	static const char text[] =
		"Quarterly budget review: revenue, costs, staffing and projects.\n"
		"This document is maintained by the finance team. Do not edit.\n";
	g->ncanary = g->pol.nprotect;
	for (int i = 0; i < g->pol.nprotect; i++) {
		char p[4200];
		snprintf(p, sizeof p, "%s/!bulwark-canary-budget.docx", g->pol.protect[i]);
		int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd >= 0) {
			for (int k = 0; k < 64; k++)
				if (bw_write_full(fd, text, sizeof text - 1))
					break;
			close(fd);
		}
		/* known by inode: a copy of it elsewhere is not a canary; one
		 * restored by a rollback is a new inode, taken in here again */
		struct stat st;
		if (lstat(p, &st) || !S_ISREG(st.st_mode) ||
		    st.st_size != (off_t)(64 * (sizeof text - 1))) {
			g->canary_ino[i] = 0;
			continue;
		}
		if (g->canary_ino[i] == st.st_ino)
			continue;
		/* only our own text: whatever else lies at that name is not one */
		char buf[sizeof text - 1];
		int ok = 1;
		int rfd = open(p, O_RDONLY | O_CLOEXEC | O_NOATIME);
		for (int k = 0; ok && rfd >= 0 && k < 64; k++)
			ok = pread(rfd, buf, sizeof buf, (off_t)(k * sizeof buf)) == (ssize_t)sizeof buf &&
			     !memcmp(buf, text, sizeof buf);
		if (rfd >= 0)
			close(rfd);
		g->canary_ino[i] = ok && rfd >= 0 ? st.st_ino : 0;
		g->canary_dev[i] = st.st_dev;
	}
}

int bw_guard_run(struct bw_guard *g, volatile int *stop)
{
	pthread_t pt, nt, at, rt;
	g->stop = stop;
	if (pthread_create(&pt, NULL, perm_thread, g))
		return bw_errf(BW_ENOMEM, "guard: cannot start a thread");
	pthread_create(&nt, NULL, gi_names_thread, g);
	pthread_create(&at, NULL, gi_analysis_thread, g);
	pthread_create(&rt, NULL, gi_responder_thread, g);
	gi_check_gap(g);
	if (g->pol.canaries)
		place_canaries(g);
	gi_state_write(g);
	double last_maint = bw_mono_s(), last_state = 0;
	uint64_t seen_overflows = 0;
	while (!*stop) {
		struct timespec ts = {0, 200 * 1000 * 1000};
		nanosleep(&ts, NULL);
		double now = bw_mono_s();
		if (g->overflows != seen_overflows) {
			seen_overflows = g->overflows;
			gi_alert(g, "{\"event\":\"queue_overflow\",\"action\":\"rescan\"}");
			for (int i = 0; i < g->pol.nprotect; i++) {
				struct stat st;
				if (!stat(g->pol.protect[i], &st) && gi_mount_of(g, st.st_dev))
					gi_scan_tree(g, gi_mount_of(g, st.st_dev), g->pol.protect[i]);
			}
		}
		if (now - last_state >= 1.0) {
			if (g->pol.canaries)
				place_canaries(g);
			gi_state_write(g);
			last_state = now;
		}
		if (now - last_maint >= 60) {
			pthread_mutex_lock(&g->lock);
			gi_vault_maintain(g);
			pthread_mutex_unlock(&g->lock);
			last_maint = now;
		}
	}
	pthread_mutex_lock(&g->qlock);
	pthread_cond_broadcast(&g->qcond);
	pthread_mutex_unlock(&g->qlock);
	pthread_join(rt, NULL);
	pthread_join(pt, NULL);
	pthread_join(nt, NULL);
	pthread_join(at, NULL);
	g->clean_stop = 1;
	gi_state_write(g);
	return 0;
}

void bw_guard_free(struct bw_guard *g)
{
	if (!g)
		return;
	if (g->perm_fd >= 0)
		close(g->perm_fd); /* pending permission events are allowed */
	if (g->name_fd >= 0)
		close(g->name_fd);
	for (int i = 0; i < g->nmounts; i++) {
		if (g->mounts[i].mount_fd >= 0)
			close(g->mounts[i].mount_fd);
	}
	if (g->journal_fd >= 0)
		close(g->journal_fd);
	if (g->alert_fd >= 0)
		close(g->alert_fd);
	if (g->copies_fd >= 0)
		close(g->copies_fd);
	if (g->seg_fd >= 0)
		close(g->seg_fd);
	free(g->copybuf);
	gz_writer_release(&g->gz);
	free(g->pre_paths);
	for (size_t i = g->qhead; i < g->qtail; i++)
		gi_job_release(&g->q[i % g->qcap]);
	for (size_t i = 0; i < sizeof g->trees / sizeof *g->trees; i++)
		bw_pidset_release(&g->trees[i].members);
	for (size_t i = 0; i < g->inode_cap; i++) {
		if (g->inodes[i].ino && g->inodes[i].hold)
			close(g->inodes[i].hold - 1);
		gi_wc_end(&g->inodes[i]); /* episodes still open at the stop */
	}
	free(g->q);
	free(g->inodes);
	free(g->paths.v);
	pthread_mutex_destroy(&g->lock);
	pthread_mutex_destroy(&g->spawn_lock);
	pthread_mutex_destroy(&g->qlock);
	pthread_cond_destroy(&g->qcond);
	pthread_cond_destroy(&g->resp_cond);
	pthread_cond_destroy(&g->verdict_cond);
	free(g);
}
