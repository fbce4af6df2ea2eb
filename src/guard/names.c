/* The name thread (creates, deletes, renames from the FID-based
 * notification group) and the analysis thread (closed files: old copy
 * against new content).  Neither holds g->lock while it touches a
 * watched file system: its own opens raise permission events that the
 * permission thread must be free to answer. */
#include "guard_int.h"
#include "analyze.h"
#include "journal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/fanotify.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <unistd.h>

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static int is_log_name(const char *path)
{
	const char *b = base_name(path);
	return strstr(b, ".log") != NULL || strstr(path, "/log/") != NULL ||
	       strstr(path, "/logs/") != NULL;
}

/* Ransom notes: a readme-like name in a text-like format. */
static int note_like(const char *path)
{
	const char *b = base_name(path);
	static const char *words[] = {"decrypt", "restore", "recover", "ransom",
	                              "how_to", "how-to", "howto", "readme",
	                              "unlock", "instruction", "your_files",
	                              "read_me", "!!!", NULL};
	const char *dot = strrchr(b, '.');
	if (!dot || (strcasecmp(dot, ".txt") && strcasecmp(dot, ".html") &&
	             strcasecmp(dot, ".hta") && strcasecmp(dot, ".htm") &&
	             strcasecmp(dot, ".url")))
		return 0;
	char low[256];
	size_t i;
	for (i = 0; b[i] && i + 1 < sizeof low; i++)
		low[i] = (char)tolower((unsigned char)b[i]);
	low[i] = 0;
	for (int k = 0; words[k]; k++)
		if (strstr(low, words[k]))
			return 1;
	return 0;
}

/* A rename that gives a file a new extension: x.docx -> x.docx.locked,
 * x.docx -> x.abcde, x.docx -> x. */
static int ext_changed(const char *from, const char *to)
{
	const char *a = base_name(from), *b = base_name(to);
	const char *ea = strrchr(a, '.'), *eb = strrchr(b, '.');
	size_t sa = ea ? (size_t)(ea - a) : strlen(a);
	if (strncmp(a, b, sa))
		return 0; /* a different name, not a new extension */
	if (!ea && !eb)
		return 0;
	if (ea && eb && !strcmp(ea, eb))
		return 0;
	/* x.lock -> x, x.tmp -> x: a finished write, not a new extension */
	if (strlen(b) < strlen(a))
		return 0;
	/* log rotation: x.log -> x.log.1 */
	if (eb && isdigit((unsigned char)eb[1]))
		return 0;
	return 1;
}

static struct gi_mount *mount_by_fsid(struct bw_guard *g,
                                      const __kernel_fsid_t *fsid)
{
	for (int i = 0; i < g->nmounts; i++) {
		struct statfs s;
		if (fstatfs(g->mounts[i].mount_fd, &s))
			continue;
		if (!memcmp(&s.f_fsid, fsid, sizeof *fsid))
			return &g->mounts[i];
	}
	return NULL;
}

/* Open a handle as O_PATH (no permission events). */
static int handle_open(struct gi_mount *m, struct file_handle *fh)
{
	return open_by_handle_at(m->mount_fd, fh, O_PATH | O_CLOEXEC);
}

static int handle_dir_path(struct gi_mount *m, struct file_handle *fh,
                           const char *name, char *out, size_t n)
{
	int fd = handle_open(m, fh);
	if (fd < 0)
		return BW_ENOENT;
	char dir[4096];
	int r = gi_fd_path(fd, dir, sizeof dir);
	close(fd);
	if (r)
		return BW_ENOENT;
	int w = snprintf(out, n, "%s%s%s", dir, strcmp(dir, "/") ? "/" : "", name ? name : "");
	return w < 0 || (size_t)w >= n ? BW_ETOOBIG : 0;
}

static void handle_name(struct bw_guard *g, const struct fanotify_event_metadata *m)
{
	if (m->mask & FAN_Q_OVERFLOW) {
		g->overflows++;
		return;
	}
	pid_t tgid = m->pid;
	struct gi_mount *mnt = NULL;
	struct file_handle *obj = NULL, *dir = NULL, *odir = NULL, *ndir = NULL;
	const char *name = NULL, *oname = NULL, *nname = NULL;
	const char *p = (const char *)m + m->metadata_len, *end = (const char *)m + m->event_len;
	while (p + sizeof(struct fanotify_event_info_header) <= end) {
		const struct fanotify_event_info_header *h = (const void *)p;
		if (h->len < sizeof *h || p + h->len > end)
			break;
		if (h->info_type == FAN_EVENT_INFO_TYPE_FID ||
		    h->info_type == FAN_EVENT_INFO_TYPE_DFID_NAME ||
		    h->info_type == FAN_EVENT_INFO_TYPE_DFID ||
		    h->info_type == FAN_EVENT_INFO_TYPE_OLD_DFID_NAME ||
		    h->info_type == FAN_EVENT_INFO_TYPE_NEW_DFID_NAME) {
			const struct fanotify_event_info_fid *f = (const void *)p;
			struct file_handle *fh = (struct file_handle *)(void *)f->handle;
			size_t fixed = sizeof *f + sizeof *fh;
			if (h->len < fixed || fh->handle_bytes > h->len - fixed ||
			    fh->handle_bytes > MAX_HANDLE_SZ)
				break;
			const char *nm = (const char *)fh->f_handle + fh->handle_bytes;
			if ((h->info_type == FAN_EVENT_INFO_TYPE_DFID_NAME ||
			     h->info_type == FAN_EVENT_INFO_TYPE_OLD_DFID_NAME ||
			     h->info_type == FAN_EVENT_INFO_TYPE_NEW_DFID_NAME) &&
			    !memchr(nm, 0, (size_t)(p + h->len - nm)))
				break;
			if (!mnt)
				mnt = mount_by_fsid(g, &f->fsid);
			switch (h->info_type) {
			case FAN_EVENT_INFO_TYPE_FID: obj = fh; break;
			case FAN_EVENT_INFO_TYPE_DFID: dir = fh; break;
			case FAN_EVENT_INFO_TYPE_DFID_NAME: dir = fh; name = nm; break;
			case FAN_EVENT_INFO_TYPE_OLD_DFID_NAME: odir = fh; oname = nm; break;
			case FAN_EVENT_INFO_TYPE_NEW_DFID_NAME: ndir = fh; nname = nm; break;
			}
		}
		p += h->len;
	}
	if (!mnt)
		return;
	struct stat st, *stp = NULL;
	if (obj) {
		int fd = handle_open(mnt, obj);
		if (fd >= 0) {
			if (!fstat(fd, &st))
				stp = &st;
			close(fd);
		}
	}
	/* trusted programs and the guard itself (rollback) are not scored,
	 * but what they delete is let go */
	int untrusted = tgid != g->self && !gi_trusted(g, tgid);
	pid_t sid = untrusted ? gi_sid_of(g, tgid) : 0;
	int isdir = (m->mask & FAN_ONDIR) != 0;
	char path[4096], to[4096];

	if (m->mask & FAN_MODIFY) {
		/* a file with no writer changed: a truncate(2) by name, which
		 * the guard could not copy first (no read events, see
		 * strict-reads); it still destroys a file and stops the tree */
		if (!stp || !S_ISREG(stp->st_mode))
			return;
		pthread_mutex_lock(&g->lock);
		struct gi_inode *in = gi_inode_get(g, stp->st_ino, 0);
		int cut = 0;
		if (in && !in->preopened && in->read_watch && in->writers == 0) {
			cut = (uint64_t)stp->st_size < in->rsize;
			in->rsize = (uint64_t)stp->st_size;
		}
		pthread_mutex_unlock(&g->lock);
		if (!cut || !untrusted)
			return;
		if (!dir || handle_dir_path(mnt, dir, name, path, sizeof path))
			snprintf(path, sizeof path, "(inode %llu)", (unsigned long long)stp->st_ino);
		char ev[4200];
		snprintf(ev, sizeof ev, "%.4000s (truncated by name: its old content "
		         "could not be kept)", path);
		gi_journal(g, "cut", tgid, path, NULL, stp, NULL);
		gi_score_add(g, tgid, sid, "damaged", 0, ev);
		return;
	}

	if (m->mask & FAN_RENAME) {
		if (!odir || !ndir || handle_dir_path(mnt, odir, oname, path, sizeof path) ||
		    handle_dir_path(mnt, ndir, nname, to, sizeof to))
			return;
		if (!gi_path_protected(g, path) && !gi_path_protected(g, to))
			return;
		pthread_mutex_lock(&g->lock);
		uint64_t moved = gi_path_take(&g->paths, path, NULL);
		uint64_t victim = gi_path_take(&g->paths, to, NULL);
		if (stp)
			moved = stp->st_ino;
		if (moved)
			gi_path_set(&g->paths, to, mnt->dev, moved);
		pthread_mutex_unlock(&g->lock);
		int real = 0;
		uint64_t vsize = 0;
		if (!isdir && victim && victim != moved)
			real = gi_vault_release(g, victim, to, tgid, sid, untrusted, &vsize);
		if (tgid == g->self)
			return;
		gi_journal(g, isdir ? "rename_dir" : "rename", tgid, path, to, stp, NULL);
		if (isdir || !untrusted)
			return;
		gi_score_add(g, tgid, sid, NULL, 0, NULL);
		if (gi_is_canary(g, moved))
			gi_score_add(g, tgid, sid, "canary", 0, path);
		if (victim && victim != moved && gi_is_canary(g, victim)) {
			gi_canary_gone(g, victim);
			gi_score_add(g, tgid, sid, "canary", 0, to);
		}
		if (ext_changed(path, to))
			gi_score_add(g, tgid, sid, "ext", 0, to);
		if (real)
			gi_score_pair(g, tgid, sid, 0, vsize, moved, victim, to);
		return;
	}
	if (!dir || handle_dir_path(mnt, dir, name, path, sizeof path) ||
	    !gi_path_protected(g, path))
		return;
	if (m->mask & FAN_CREATE) {
		if (stp && !isdir) {
			pthread_mutex_lock(&g->lock);
			gi_path_set(&g->paths, path, mnt->dev, stp->st_ino);
			struct gi_inode *in = gi_inode_get(g, stp->st_ino, 1);
			if (in) {
				in->born_sid = sid;
				in->born_pid = tgid;
				in->born_ns = bw_boot_ns();
				in->born_only = !in->early_writer || in->early_writer == tgid;
				in->early_writer = 0;
			}
			pthread_mutex_unlock(&g->lock);
		}
		if (tgid == g->self)
			return;
		gi_journal(g, isdir ? "mkdir" : "create", tgid, path, NULL, stp, NULL);
		if (isdir || !untrusted)
			return;
		if (note_like(path))
			gi_score_add(g, tgid, sid, "note", 0, path);
		else
			gi_score_add(g, tgid, sid, NULL, 0, NULL);
	} else if (m->mask & FAN_DELETE) {
		pthread_mutex_lock(&g->lock);
		uint64_t ino = isdir ? 0 : gi_path_take(&g->paths, path, NULL);
		pthread_mutex_unlock(&g->lock);
		if (stp && !isdir)
			ino = stp->st_ino;
		uint64_t dsize = 0;
		int real = ino ? gi_vault_release(g, ino, path, tgid, sid, untrusted, &dsize) : 0;
		if (tgid == g->self)
			return;
		struct stat dst;
		memset(&dst, 0, sizeof dst);
		dst.st_ino = ino;
		gi_journal(g, isdir ? "rmdir" : "delete", tgid, path, NULL,
		           stp ? stp : (ino ? &dst : NULL), NULL);
		if (isdir || !untrusted)
			return;
		gi_score_add(g, tgid, sid, NULL, 0, NULL);
		if (gi_is_canary(g, ino)) {
			gi_canary_gone(g, ino);
			gi_score_add(g, tgid, sid, "canary", 0, path);
		}
		else if (real)
			gi_score_pair(g, tgid, sid, 0, dsize, 0, ino, path);
	}
}

void *gi_names_thread(void *arg)
{
	struct bw_guard *g = arg;
	size_t bufsz = 64 * 1024;
	char *buf = malloc(bufsz);
	static _Alignas(8) char ev[8192];
	if (!buf)
		return NULL;
	while (!*g->stop) {
		struct pollfd p = {g->name_fd, POLLIN, 0};
		if (poll(&p, 1, 200) <= 0)
			continue;
		ssize_t len = read(g->name_fd, buf, bufsz);
		if (len <= 0)
			continue;
		g->names_busy = 1;
		/* FID records make events of any length: each is copied to an
		 * aligned buffer before its fields are read */
		size_t off = 0;
		while (off + sizeof(struct fanotify_event_metadata) <= (size_t)len) {
			struct fanotify_event_metadata hd;
			memcpy(&hd, buf + off, sizeof hd);
			if (hd.event_len < sizeof hd || hd.event_len > (size_t)len - off ||
			    hd.event_len > sizeof ev)
				break;
			memcpy(ev, buf + off, hd.event_len);
			off += hd.event_len;
			const struct fanotify_event_metadata *m = (const void *)ev;
			if (m->vers == FANOTIFY_METADATA_VERSION &&
			    m->metadata_len >= sizeof hd && m->metadata_len <= m->event_len)
				handle_name(g, m);
			if (m->fd >= 0)
				close(m->fd);
		}
		g->names_busy = 0;
	}
	free(buf);
	return NULL;
}

static int gz_read_fn(void *arg, uint64_t off, uint8_t *buf, size_t len, size_t *got)
{
	return gz_read(arg, off, buf, len, got);
}

struct mem_src { uint8_t *p; uint64_t n; };

static int mem_read_fn(void *arg, uint64_t off, uint8_t *buf, size_t len, size_t *got)
{
	const struct mem_src *m = arg;
	*got = off >= m->n ? 0 : m->n - off < len ? (size_t)(m->n - off) : len;
	if (*got)
		memcpy(buf, m->p + off, *got);
	return 0;
}

static void analyse(struct bw_guard *g, struct gi_job *j)
{
	char path[4096];
	if (gi_fd_path(j->fd, path, sizeof path) || !gi_path_protected(g, path))
		return;
	pid_t sid = j->sid ? j->sid : gi_sid_of(g, j->tgid);
	if (gi_is_canary(g, j->ino)) {
		gi_score_add(g, j->tgid, sid, "canary", 0, path);
		return;
	}
	if (j->copy_ns > 0) {
		char cp[4300];
		if (gi_vault_copy_path(g, j->copy_ns, j->ino, j->copy_off, cp, sizeof cp))
			return;
		int ofd = open(cp, O_RDONLY | O_CLOEXEC);
		if (ofd < 0)
			return;
		struct bw_sample_cmp c;
		int r;
		if (j->runs) {
			/* a ranged copy: the bytes it overwrote against the bytes
			 * there now, range by range, end to end */
			uint64_t tot = 0;
			for (int i = 0; i < j->nruns; i++)
				tot += j->runs[i].len;
			uint8_t *ob = malloc(tot ? tot : 1), *nb = calloc(1, tot ? tot : 1);
			uint64_t o = 0, nlen = 0;
			r = ob && nb ? 0 : BW_ENOMEM;
			for (int i = 0; !r && i < j->nruns; i++) {
				ssize_t a = pread(ofd, ob + o, j->runs[i].len, (off_t)j->runs[i].at);
				ssize_t b = pread(j->fd, nb + o, j->runs[i].len, (off_t)j->runs[i].at);
				if (a != (ssize_t)j->runs[i].len || b < 0)
					r = BW_EIO;
				else if (b > 0)
					nlen = o + (uint64_t)b;
				o += j->runs[i].len;
			}
			close(ofd);
			if (!r)
				r = bw_sample_compare_mem(ob, (size_t)o, nb, (size_t)nlen, &c);
			free(ob);
			free(nb);
		} else if (j->copy_off >= 0) {
			/* a packed copy (at most 1 MiB): unpacked into memory */
			struct mem_src old = {malloc(j->copy_size ? j->copy_size : 1), j->copy_size};
			r = old.p ? gz_unpack(ofd, j->copy_off, j->copy_size, j->copy_z, old.p)
			          : BW_ENOMEM;
			close(ofd);
			if (!r)
				r = bw_sample_compare_rd(mem_read_fn, &old, old.n, j->fd, &c);
			free(old.p);
		} else if (j->copy_z) {
			struct gz_reader z;
			r = gz_open(&z, ofd);
			if (!r) {
				r = bw_sample_compare_rd(gz_read_fn, &z, z.size, j->fd, &c);
				gz_close(&z);
			}
			close(ofd);
		} else {
			r = bw_sample_compare(ofd, j->fd, &c); /* a complete ranged copy */
			close(ofd);
		}
		if (r)
			return;
		if (c.suspicious) {
			char ev[4400];
			snprintf(ev, sizeof ev, "%s (%s -> %s, entropy %.2f -> %.2f)", path,
			         bw_ftype_name(c.old_type), bw_ftype_name(c.new_type),
			         c.old_entropy, c.new_entropy);
			gi_score_add(g, j->tgid, sid, "damaged", 0, ev);
		} else if (c.wiped && !is_log_name(path)) {
			gi_score_add(g, j->tgid, sid, "wiped", 0, path);
		}
	} else if (j->copy_ns == 0) {
		/* a new (or empty) file: ciphertext of no known format? */
		struct stat nst;
		/* below 512 bytes nothing looks random enough to tell */
		if (!fstat(j->fd, &nst) && nst.st_size >= 512 &&
		    bw_new_file_ciphertext_like(j->fd) == 1)
			gi_score_pair(g, j->tgid, sid, 1, (uint64_t)nst.st_size, j->ino, 0, path);
	}
}

void *gi_analysis_thread(void *arg)
{
	struct bw_guard *g = arg;
	for (;;) {
		pthread_mutex_lock(&g->qlock);
		while (g->qhead == g->qtail && !*g->stop) {
			struct timespec ts = gi_deadline(200);
			pthread_cond_timedwait(&g->qcond, &g->qlock, &ts);
		}
		if (g->qhead == g->qtail) {
			pthread_mutex_unlock(&g->qlock);
			break;
		}
		struct gi_job j = g->q[g->qhead++ % g->qcap];
		g->analysis_busy = 1;
		pthread_mutex_unlock(&g->qlock);
		analyse(g, &j);
		gi_job_release(&j);
		g->analysis_busy = 0;
		pthread_mutex_lock(&g->lock);
		struct gi_tree *t = gi_tree_get(g, j.sid, 0);
		if (t && t->pending > 0)
			t->pending--;
		if (t && j.copy_ns > 0 && t->backlog > 0)
			t->backlog--;
		pthread_cond_broadcast(&g->verdict_cond);
		pthread_mutex_unlock(&g->lock);
	}
	return NULL;
}
