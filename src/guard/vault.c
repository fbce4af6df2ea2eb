/* The rollback vault.
 *
 * Two halves, because of what fanotify can and cannot stop:
 * - held descriptors: the guard keeps a read-only descriptor on every file
 *   of a protected tree (taken at start-up and at the first open of new
 *   ones).  Renames and unlinks get no permission event, but an inode that
 *   is still open outlives both, so when the name event of a delete or a
 *   rename over a file arrives, the guard copies the content from its
 *   descriptor.  Unlike a second hard link this changes nothing a program
 *   can see (gzip and xz refuse files with more than one link).
 * - copies: before the first write of each write episode (from the first
 *   writer's first write until the last writer closes) the old content is
 *   copied to <state>/copies/<ns>-<inode>, on another file system: the
 *   guard never writes data where it watches, so it cannot block on its
 *   own permission events.  Holes of sparse files stay holes.
 * The journal says which path each copy belonged to. */
#include "guard_int.h"
#include "analyze.h"
#include "journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <unistd.h>

int gi_vault_open(struct bw_guard *g)
{
	char p[4200];
	if (bw_mkdir_p(g->pol.state_dir, 0700))
		return bw_errf(BW_EIO, "guard: cannot create %s: %s",
		               g->pol.state_dir, strerror(errno));
	snprintf(g->copies_path, sizeof g->copies_path, "%s/copies",
	         g->pol.state_dir);
	if (mkdir(g->copies_path, 0700) && errno != EEXIST)
		return bw_errf(BW_EIO, "guard: cannot create %s: %s",
		               g->copies_path, strerror(errno));
	g->copies_fd = open(g->copies_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	snprintf(p, sizeof p, "%s/journal.jsonl", g->pol.state_dir);
	g->journal_fd = gj_open_append(p);
	if (g->pol.alert_log[0])
		snprintf(p, sizeof p, "%s", g->pol.alert_log);
	else
		snprintf(p, sizeof p, "%s/alerts.jsonl", g->pol.state_dir);
	g->alert_fd = gj_open_append(p);
	if (g->copies_fd < 0 || g->journal_fd < 0 || g->alert_fd < 0)
		return bw_errf(BW_EIO, "guard: cannot open the vault in %s: %s",
		               g->pol.state_dir, strerror(errno));
	/* what the copies already take */
	DIR *d = fdopendir(dup(g->copies_fd));
	if (d) {
		struct dirent *e;
		while ((e = readdir(d))) {
			struct stat st;
			if (e->d_name[0] == '.' ||
			    fstatat(g->copies_fd, e->d_name, &st, 0))
				continue;
			g->vault_bytes += (uint64_t)st.st_blocks * 512;
			g->copies_n++;
		}
		closedir(d);
	}
	return 0;
}

int gi_vault_hold(struct bw_guard *g, struct gi_inode *in, int fd,
                  const struct stat *st, const char *path, pid_t pid)
{
	if (in->hold || g->nheld >= g->hold_max) {
		if (!in->hold)
			g->unheld++;
		close(fd);
		return 0;
	}
	in->hold = fd + 1;
	g->nheld++;
	gi_path_set(&g->paths, path, st->st_dev, st->st_ino);
	gi_journal(g, "seen", pid, path, NULL, st, NULL);
	return 1;
}

int gi_vault_release(struct bw_guard *g, uint64_t ino, const char *path,
                     pid_t pid, pid_t sid, int copy, uint64_t *size)
{
	*size = 0;
	pthread_mutex_lock(&g->lock);
	struct gi_inode *in = gi_inode_get(g, ino, 0);
	int fd = in && in->hold ? in->hold - 1 : -1;
	int own = in && sid && in->born_sid == sid;
	/* a process deleting a file it made itself (a temporary file) loses
	 * nothing of anyone's; a tree is not enough: an attacker started from
	 * a user's shell shares the session of everything made there */
	int made = in && pid > 0 && in->born_pid == pid;
	struct stat st;
	/* The held inode still has a name: the one removed was one of its
	 * hard links, or the number was freed by an unheld file and reused
	 * by the one held now.  Either way this entry belongs to a live file
	 * whose descriptor still protects it: keep both (closing it would
	 * leave that file's later deletion with nothing to copy from). */
	int linked = fd >= 0 && !fstat(fd, &st) && st.st_nlink > 0;
	if (in && in->hold && !linked)
		g->nheld--;
	if (in && !linked) {
		/* the inode dies with this name; its number will be reused */
		uint64_t keep = in->ino;
		gi_wc_end(in);
		memset(in, 0, sizeof *in);
		in->ino = keep;
	}
	int real = 0;
	if (fd >= 0 && copy && !made && !fstat(fd, &st) && st.st_size > 0) {
		/* the content must be kept even if the verdict comes later */
		if (gi_vault_copy(g, fd, &st, path, pid, NULL)) {
			bw_warn("guard: %s", bw_err_msg());
			bw_err_clear();
		}
	}
	pthread_mutex_unlock(&g->lock);
	if (linked)
		return 0; /* the content is still reachable: nothing was lost */
	if (fd >= 0 && copy && !own && !fstat(fd, &st) && st.st_size > 0) {
		real = bw_new_file_ciphertext_like(fd) == 0;
		*size = (uint64_t)st.st_size;
	}
	if (fd >= 0)
		close(fd);
	return real;
}

int gi_vault_copy_path(struct bw_guard *g, int64_t ns, uint64_t ino, int64_t off,
                       char *out, size_t n)
{
	int k = off >= 0 ? snprintf(out, n, "%s/%lld.seg", g->copies_path, (long long)ns)
	                 : snprintf(out, n, "%s/%lld-%llu", g->copies_path, (long long)ns,
	                            (unsigned long long)ino);
	return k < 0 || (size_t)k >= n ? BW_ETOOBIG : 0;
}

#define SEG_MAX (64ULL << 20)
#define PACK_MAX GI_PACK_MAX

/* Append a small file to the current segment, compressed if that saves
 * an eighth or more (*z). */
static int copy_packed(struct bw_guard *g, int fd, uint64_t size, int64_t *ns,
                       int64_t *off, int *z)
{
	if (!gi_copybuf(g))
		return BW_ENOMEM;
	if (g->seg_fd < 0 || g->seg_off + size > SEG_MAX) {
		if (g->seg_fd >= 0)
			close(g->seg_fd);
		g->seg_ns = bw_now_ns();
		g->seg_off = 0;
		char name[64];
		snprintf(name, sizeof name, "%lld.seg", (long long)g->seg_ns);
		g->seg_fd = openat(g->copies_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
		                   0600);
		if (g->seg_fd < 0)
			return bw_from_errno(errno);
		g->copies_n++;
	}
	ssize_t n = pread(fd, g->copybuf, size, 0);
	if (n < 0)
		return bw_from_errno(errno);
	if ((uint64_t)n < size)
		memset(g->copybuf + n, 0, size - (uint64_t)n);
	const uint8_t *p = g->copybuf;
	size_t len = (size_t)size, zl = 0;
	*z = 0;
	if (gz_pack(&g->gz, g->copybuf, len, &p, &zl) == 0 && zl < len - len / 8) {
		len = zl;
		*z = 1;
	} else {
		p = g->copybuf;
	}
	int r = bw_pwrite_full(g->seg_fd, p, len, g->seg_off);
	if (r)
		return r;
	*ns = g->seg_ns;
	*off = (int64_t)g->seg_off;
	g->seg_off += len;
	g->vault_bytes += len;
	return 0;
}

uint8_t *gi_copybuf(struct bw_guard *g)
{
	if (!g->copybuf)
		g->copybuf = malloc(GI_PACK_MAX);
	return g->copybuf;
}

int gi_all_zero(const uint8_t *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

static int put_run(int out, const uint8_t *buf, size_t from, size_t to,
                   uint64_t at, uint64_t *stored)
{
	if (stored)
		*stored += to - from;
	return bw_pwrite_full(out, buf + from, to - from, at + from);
}

int gi_write_nonzero(int out, const uint8_t *buf, size_t n, uint64_t at,
                     uint64_t *stored)
{
	size_t run = n; /* start of the run of data blocks being gathered */
	for (size_t a = 0; a < n; a += 4096) {
		if (!gi_all_zero(buf + a, n - a < 4096 ? n - a : 4096)) {
			if (run == n)
				run = a;
		} else if (run < n) {
			int e = put_run(out, buf, run, a, at, stored);
			if (e)
				return e;
			run = n;
		}
	}
	return run < n ? put_run(out, buf, run, n, at, stored) : 0;
}

/* Copy [pos, end) of in to the same offsets of out, in the kernel. */
static int copy_region(int in, int out, off_t pos, off_t end)
{
	while (pos < end) {
		size_t want = (size_t)(end - pos);
		if (want > (1u << 30))
			want = 1u << 30;
		if (lseek(out, pos, SEEK_SET) < 0)
			return bw_from_errno(errno);
		ssize_t n = sendfile(out, in, &pos, want);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return bw_from_errno(errno);
		}
		if (n == 0)
			break;
	}
	return 0;
}

int gi_copy_sparse(int in, int out, uint64_t size)
{
	off_t off = 0;
	while ((uint64_t)off < size) {
		off_t data = lseek(in, off, SEEK_DATA);
		if (data < 0) {
			if (errno == ENXIO)
				break;
			data = off; /* no SEEK_DATA: copy everything */
		}
		off_t hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0 || (uint64_t)hole > size)
			hole = (off_t)size;
		int e = copy_region(in, out, data, hole);
		if (e)
			return e;
		off = hole;
	}
	if (ftruncate(out, (off_t)size))
		return bw_from_errno(errno);
	return 0;
}

int gi_vault_copy(struct bw_guard *g, int fd, const struct stat *st,
                  const char *path, pid_t pid, struct gi_wcopy *w)
{
	uint64_t size = (uint64_t)st->st_size;
	if (size > g->pol.copy_max)
		return bw_errf(BW_ETOOBIG, "%s: %llu bytes, larger than copy-max",
		               path, (unsigned long long)size);
	if (g->vault_bytes + size > g->pol.vault_budget) {
		gi_vault_maintain(g);
		if (g->vault_bytes + size > g->pol.vault_budget)
			return bw_errf(BW_ENOSPC, "%s: the vault budget is used up", path);
	}
	char vp[4300];
	int64_t ns = 0, off = -1;
	int r, z = 1; /* a file of its own is always compressed; packed: if it pays */
	if (size <= PACK_MAX) {
		if ((r = copy_packed(g, fd, size, &ns, &off, &z)))
			return bw_errf(r, "vault copy of %s: %s", path, bw_strerror(r));
	} else {
		ns = bw_now_ns();
		char name[64];
		snprintf(name, sizeof name, "%lld-%llu", (long long)ns,
		         (unsigned long long)st->st_ino);
		int out = openat(g->copies_fd, name,
		                 O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (out < 0)
			return bw_errf(bw_from_errno(errno), "vault copy of %s: %s", path,
			               strerror(errno));
		uint64_t stored = 0;
		r = gz_write(&g->gz, fd, out, size, &stored);
		if (!r)
			g->vault_bytes += stored;
		close(out);
		if (r) {
			unlinkat(g->copies_fd, name, 0);
			return bw_errf(r, "vault copy of %s: %s", path, bw_strerror(r));
		}
		g->copies_n++;
	}
	gi_vault_copy_path(g, ns, st->st_ino, off, vp, sizeof vp);
	gi_journal_copy(g, pid, path, st, vp, off, 0, z);
	g->copies++;
	if (w) {
		w->ns = ns;
		w->off = off;
		w->size = size;
		w->z = z;
	}
	return 0;
}

/* Drop copies past their expiry, then the oldest while over budget. */
/* Drop the copies last written before mtime_cut or named (created)
 * before ns_cut; never the segment being written.  Returns the oldest
 * creation time kept (INT64_MAX if none). */
static int64_t sweep(struct bw_guard *g, int64_t mtime_cut, int64_t ns_cut)
{
	int64_t oldest_kept = INT64_MAX;
	DIR *d = fdopendir(dup(g->copies_fd));
	if (!d)
		return oldest_kept;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		long long ns = strtoll(e->d_name, NULL, 10);
		struct stat st;
		if (fstatat(g->copies_fd, e->d_name, &st, 0) || ns == g->seg_ns)
			continue;
		/* a segment holds copies up to its last write */
		int64_t mt = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
		if ((mt < mtime_cut || ns <= ns_cut) && !unlinkat(g->copies_fd, e->d_name, 0)) {
			uint64_t b = (uint64_t)st.st_blocks * 512;
			g->vault_bytes -= b < g->vault_bytes ? b : g->vault_bytes;
			g->copies_n--;
		} else if (ns < oldest_kept) {
			oldest_kept = ns;
		}
	}
	closedir(d);
	return oldest_kept;
}

void gi_vault_maintain(struct bw_guard *g)
{
	int64_t now = bw_now_ns();
	int64_t oldest = sweep(g, now - g->pol.expiry_ns, INT64_MIN);
	/* over budget: halve the window until it fits (oldest go first) */
	for (int round = 0; round < 20 && g->vault_bytes > g->pol.vault_budget &&
	                    oldest != INT64_MAX; round++)
		oldest = sweep(g, INT64_MIN, oldest + (now - oldest) / 2);
}

/* Hold every regular file under root (the start-up scan and the rescan
 * after a lost event).  Returns how many were taken anew. */
static int scan_dir(struct bw_guard *g, struct gi_mount *m, int dfd,
                    const char *path, int depth)
{
	if (depth > 256)
		return 0;
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return 0;
	}
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char sub[4096];
		int k = snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
		if (k < 0 || (size_t)k >= sizeof sub)
			continue;
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		if (st.st_dev != m->dev)
			continue;
		if (S_ISDIR(st.st_mode)) {
			int cfd = openat(dirfd(d), e->d_name,
			                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (cfd >= 0)
				n += scan_dir(g, m, cfd, sub, depth + 1);
		} else if (S_ISREG(st.st_mode)) {
			pthread_mutex_lock(&g->lock);
			struct gi_inode *in = gi_inode_get(g, st.st_ino, 1);
			int need = in && !in->hold;
			pthread_mutex_unlock(&g->lock);
			if (!need)
				continue;
			int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
			                                     O_NOATIME | O_CLOEXEC);
			if (fd < 0)
				fd = openat(dirfd(d), e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
				                                 O_CLOEXEC);
			if (fd < 0)
				continue;
			pthread_mutex_lock(&g->lock);
			in = gi_inode_get(g, st.st_ino, 1);
			if (in)
				n += gi_vault_hold(g, in, fd, &st, sub, 0);
			else
				close(fd);
			pthread_mutex_unlock(&g->lock);
		}
	}
	closedir(d);
	return n;
}

int gi_scan_tree(struct bw_guard *g, struct gi_mount *m, const char *root)
{
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return bw_errf(bw_from_errno(errno), "guard: cannot open %s: %s",
		               root, strerror(errno));
	return scan_dir(g, m, fd, root, 0);
}

/* Files opened for writing before the guard started get no permission
 * event for their writes: copy them now, so their content from this
 * moment is kept, and count them as writers. */
int gi_preopened_scan(struct bw_guard *g)
{
	DIR *d = opendir("/proc");
	if (!d)
		return BW_EIO;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		pid_t pid = (pid_t)strtol(e->d_name, NULL, 10);
		if (pid == g->self)
			continue;
		char fdd[64];
		snprintf(fdd, sizeof fdd, "/proc/%d/fd", (int)pid);
		DIR *fds = opendir(fdd);
		if (!fds)
			continue;
		struct dirent *f;
		while ((f = readdir(fds))) {
			if (f->d_name[0] == '.')
				continue;
			char lp[512], info[512], buf[512];
			snprintf(lp, sizeof lp, "%s/%s", fdd, f->d_name);
			struct stat st;
			if (stat(lp, &st) || !S_ISREG(st.st_mode) || !gi_mount_of(g, st.st_dev))
				continue;
			snprintf(info, sizeof info, "/proc/%d/fdinfo/%s", (int)pid, f->d_name);
			int ifd = open(info, O_RDONLY | O_CLOEXEC);
			if (ifd < 0)
				continue;
			ssize_t k = read(ifd, buf, sizeof buf - 1);
			close(ifd);
			if (k <= 0)
				continue;
			buf[k] = 0;
			char *fl = strstr(buf, "flags:");
			if (!fl)
				continue;
			unsigned long flags = strtoul(fl + 6, NULL, 8);
			if ((flags & O_ACCMODE) == O_RDONLY)
				continue;
			char path[4096];
			ssize_t pl = readlink(lp, path, sizeof path - 1);
			if (pl <= 0)
				continue;
			path[pl] = 0;
			if (!gi_path_protected(g, path))
				continue;
			int rfd = open(lp, O_RDONLY | O_CLOEXEC | O_NOATIME);
			if (rfd < 0)
				rfd = open(lp, O_RDONLY | O_CLOEXEC);
			if (rfd < 0)
				continue;
			struct bw_proc_info pi;
			pid_t sid = bw_proc_info(pid, &pi) ? 0 : pi.sid;
			pthread_mutex_lock(&g->lock);
			struct gi_inode *in = gi_inode_get(g, st.st_ino, 1);
			struct gi_wcopy *w = in ? gi_wc_add(in, sid) : NULL;
			if (w && !w->copied && st.st_size > 0 &&
			    gi_vault_copy(g, rfd, &st, path, pid, w) == 0) {
				w->copied = 1;
				n++;
			}
			if (in) {
				in->writers++;
				in->preopened = 1;
				if (!g->pre_paths)
					g->pre_paths = calloc(1024, sizeof *g->pre_paths);
				if (g->pre_paths && g->npre < 1024)
					snprintf(g->pre_paths[g->npre++], sizeof *g->pre_paths, "%s", path);
			}
			pthread_mutex_unlock(&g->lock);
			close(rfd);
		}
		closedir(fds);
	}
	closedir(d);
	return n;
}
