/* Rollback: replay the vault journal and undo what a set of processes did
 * in a time window.
 *
 * The replay keeps, for each inode, its current path;
 * within the window, every inode the processes changed (copied before a
 * write, renamed, deleted or renamed over) is "touched" and remembers its
 * path just before the first touch and the first copy taken in the
 * window.  Then:
 *   1. names the processes created, and the new names of touched files
 *      (x.docx.locked), are removed;
 *   2. each touched file is put back at its old path from its first copy
 *      (content before the first write, or before its delete) or, if only
 *      its name changed, by renaming it back (same inode and metadata);
 *   3. directories they created and left empty are removed.
 * Every write goes to a temporary name in the target directory and is
 * renamed into place, so a rollback that is interrupted leaves either the
 * old or the restored file, never half of one. */
#include "guard_int.h"
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#define RB_LINE_MAX (64 * 1024)

struct rb_ino {
	uint64_t ino;       /* 0 = free */
	char *cur;          /* current path, NULL if deleted */
	char *link;         /* vault link (journals of format v0) */
	char *orig;         /* path before the first touch in the window */
	char *copy;         /* first copy in the window by the processes */
	int64_t copy_off;   /* its offset in a segment, -1 for a file of its own */
	uint64_t copy_len;
	int copy_z;         /* compressed (zcopy.h) */
	unsigned mode, uid, gid;
	int64_t mtime;
	/* a ranged first copy: the file is rebuilt from a base (the current
	 * file, or a whole copy taken later, at base_t) with the ranges copied
	 * before base_t laid over it, the earliest last */
	int ranged;
	struct rb_range { char *vault; uint64_t at, len; int64_t t; } *rg;
	size_t nrg, rgcap;
	char *base;
	int64_t base_off, base_t;
	uint64_t base_len;
	int base_z;
	int touched, created;
	int own;            /* rewritten by its maker without a copy ("own")
	                       before any copy in the window: its state at the
	                       start of the window is not kept */
	int dead;           /* deleted or replaced: its number may come back */
};

struct rb {
	struct rb_ino *v;
	size_t cap, n;
	struct gi_pathmap paths;  /* path hash -> inode, the guard's own table */
	char **dirs;              /* directories created in the window */
	size_t ndirs, dcap;
	struct rb_ino *old;       /* files whose inode number was reused */
	size_t nold, oldcap;
	struct rb_ino **all;      /* after the replay: every file, for the steps */
	size_t nall;
};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ULL;
	x ^= x >> 27;
	return x;
}

static struct rb_ino *rb_get(struct rb *b, uint64_t ino)
{
	if (!ino)
		return NULL;
	if ((b->n + 1) * 10 >= b->cap * 7) {
		size_t nc = b->cap ? b->cap * 2 : 1024;
		struct rb_ino *nv = calloc(nc, sizeof *nv);
		if (!nv)
			return NULL;
		for (size_t i = 0; i < b->cap; i++) {
			if (!b->v[i].ino)
				continue;
			size_t j = mix(b->v[i].ino) & (nc - 1);
			while (nv[j].ino)
				j = (j + 1) & (nc - 1);
			nv[j] = b->v[i];
		}
		free(b->v);
		b->v = nv;
		b->cap = nc;
	}
	size_t j = mix(ino) & (b->cap - 1);
	while (b->v[j].ino && b->v[j].ino != ino)
		j = (j + 1) & (b->cap - 1);
	if (!b->v[j].ino) {
		b->v[j].ino = ino;
		b->n++;
	}
	return &b->v[j];
}

/* The record for a file that now has this inode number: if the number's
 * last file is gone (deleted, replaced), that one is set aside whole, so
 * that what it needs restored is not mixed with the new file's history. */
static struct rb_ino *rb_fresh(struct rb *b, uint64_t ino)
{
	struct rb_ino *r = rb_get(b, ino);
	if (!r || !r->dead)
		return r;
	if (b->nold == b->oldcap) {
		size_t nc = b->oldcap ? b->oldcap * 2 : 64;
		struct rb_ino *nv = realloc(b->old, nc * sizeof *nv);
		if (!nv)
			return r;
		b->old = nv;
		b->oldcap = nc;
	}
	b->old[b->nold++] = *r;
	memset(r, 0, sizeof *r);
	r->ino = ino;
	return r;
}

static void rb_path_set(struct rb *b, const char *path, uint64_t ino)
{
	gi_path_set(&b->paths, path, 0, ino);
}

static uint64_t rb_path_take(struct rb *b, const char *path)
{
	return gi_path_take(&b->paths, path, NULL);
}

static void set_str(char **dst, const char *s)
{
	free(*dst);
	*dst = s ? strdup(s) : NULL;
}

static int pid_in(const struct bw_guard_rollback_opts *o, int pid, int sid)
{
	if (!o->pids && !o->sids)
		return pid != 0; /* the start-up scan (pid 0) did nothing */
	for (size_t i = 0; o->pids && i < o->npids; i++)
		if (o->pids[i] == pid)
			return 1;
	for (size_t i = 0; o->sids && i < o->nsids; i++)
		if (o->sids[i] == sid && sid > 0)
			return 1;
	return 0;
}

static void touch(struct rb_ino *r, const struct gj_entry *e)
{
	if (r->touched || r->created)
		return;
	r->touched = 1;
	set_str(&r->orig, r->cur ? r->cur : e->path);
}

static void apply(struct rb *b, const struct gj_entry *e, int in_window)
{
	struct rb_ino *r;
	switch (e->op) {
	case GJ_SEEN:
	case GJ_LINK:
		r = rb_fresh(b, e->ino);
		if (!r)
			return;
		if (e->vault)
			set_str(&r->link, e->vault);
		if (!r->cur || strcmp(r->cur, e->path)) {
			if (r->cur)
				rb_path_take(b, r->cur);
			set_str(&r->cur, e->path);
		}
		r->mode = e->mode; r->uid = e->uid; r->gid = e->gid; r->mtime = e->mtime;
		rb_path_set(b, e->path, e->ino);
		return;
	case GJ_COPY:
		r = rb_get(b, e->ino);
		if (!r)
			return;
		if (!r->cur)
			set_str(&r->cur, e->path);
		if (in_window) {
			touch(r, e);
			if (!r->copy && !r->created && !r->own) {
				set_str(&r->copy, e->vault);
				r->copy_off = e->off;
				r->copy_len = e->size;
				r->copy_z = e->z;
				r->ranged = e->ranged;
				r->mode = e->mode; r->uid = e->uid; r->gid = e->gid;
				r->mtime = e->mtime;
			} else if (r->ranged && !e->ranged && !r->created && !r->base) {
				/* the first whole copy after the ranged one: a later one
				 * holds writes the ranges do not undo */
				set_str(&r->base, e->vault);
				r->base_off = e->off;
				r->base_len = e->size;
				r->base_z = e->z;
				r->base_t = e->t;
			}
		}
		return;
	case GJ_OWN:
		r = rb_get(b, e->ino);
		if (!r || !in_window || r->created || r->copy)
			return;
		if (!r->cur)
			set_str(&r->cur, e->path);
		touch(r, e);
		r->own = 1;
		return;
	case GJ_RANGE:
		r = rb_get(b, e->ino);
		if (!r || !in_window || !r->ranged || r->created)
			return;
		if (r->nrg == r->rgcap) {
			size_t nc = r->rgcap ? r->rgcap * 2 : 16;
			struct rb_range *nv = realloc(r->rg, nc * sizeof *nv);
			if (!nv)
				return;
			r->rg = nv;
			r->rgcap = nc;
		}
		r->rg[r->nrg].vault = strdup(e->vault);
		if (!r->rg[r->nrg].vault)
			return;
		r->rg[r->nrg].at = e->at;
		r->rg[r->nrg].len = e->len;
		r->rg[r->nrg++].t = e->t;
		return;
	case GJ_CREATE:
		if (!e->ino)
			return;
		r = rb_fresh(b, e->ino);
		if (!r)
			return;
		if (in_window && !r->touched)
			r->created = 1;
		set_str(&r->cur, e->path);
		rb_path_set(b, e->path, e->ino);
		return;
	case GJ_DELETE: {
		uint64_t ino = rb_path_take(b, e->path);
		if (e->ino)
			ino = e->ino;
		r = rb_get(b, ino);
		if (!r)
			return;
		if (in_window)
			touch(r, e);
		set_str(&r->cur, NULL);
		r->dead = 1;
		return;
	}
	case GJ_RENAME: {
		uint64_t moved = rb_path_take(b, e->path);
		uint64_t victim = rb_path_take(b, e->to);
		if (e->ino)
			moved = e->ino;
		if (victim && victim != moved) {
			struct rb_ino *v = rb_get(b, victim);
			if (v) {
				if (in_window)
					touch(v, e);
				set_str(&v->cur, NULL);
				v->dead = 1;
			}
		}
		r = rb_get(b, moved);
		if (!r)
			return;
		if (!r->cur)
			set_str(&r->cur, e->path);
		if (in_window)
			touch(r, e);
		set_str(&r->cur, e->to);
		rb_path_set(b, e->to, moved);
		return;
	}
	case GJ_GONE: /* a rollback removed it: not a change to undo */
		r = rb_get(b, e->ino);
		if (!r)
			return;
		if (r->cur)
			rb_path_take(b, r->cur);
		set_str(&r->cur, NULL);
		r->dead = 1;
		return;
	case GJ_RESTORE: /* a rollback put ino back at path */
		r = rb_fresh(b, e->ino);
		if (!r)
			return;
		if (r->cur && strcmp(r->cur, e->path))
			rb_path_take(b, r->cur);
		set_str(&r->cur, e->path);
		if (e->vault)
			set_str(&r->link, e->vault);
		rb_path_set(b, e->path, e->ino);
		return;
	case GJ_MKDIR:
		if (in_window && b->ndirs < 100000) {
			if (b->ndirs == b->dcap) {
				size_t nc = b->dcap ? b->dcap * 2 : 64;
				char **nd = realloc(b->dirs, nc * sizeof *nd);
				if (!nd)
					return;
				b->dirs = nd;
				b->dcap = nc;
			}
			b->dirs[b->ndirs++] = strdup(e->path);
		}
		return;
	default:
		return;
	}
}

/* What a rollback did goes into the journal too, so that a later
 * replay knows where each inode is. */
static void rb_journal_op(int jfd, const char *op, const char *path,
                          const struct stat *st, const char *vault)
{
	if (jfd < 0)
		return;
	json_t *o = json_object();
	json_object_set_new(o, "t", json_integer(bw_now_ns()));
	json_object_set_new(o, "op", json_string(op));
	json_object_set_new(o, "pid", json_integer(getpid()));
	gj_set_path(o, "path", path);
	json_object_set_new(o, "ino", json_integer((json_int_t)st->st_ino));
	json_object_set_new(o, "dev", json_integer((json_int_t)st->st_dev));
	json_object_set_new(o, "size", json_integer(st->st_size));
	json_object_set_new(o, "mode", json_integer(st->st_mode));
	gj_set_path(o, "vault", vault);
	if (gj_write_line(jfd, o))
		bw_err_clear();
	json_decref(o);
}

static void rb_journal(int jfd, const char *path, const struct stat *st,
                       const char *vault)
{
	rb_journal_op(jfd, "restore", path, st, vault);
}

static int mkparents(const char *path)
{
	char d[4096];
	snprintf(d, sizeof d, "%s", path);
	char *s = strrchr(d, '/');
	if (!s || s == d)
		return 0;
	*s = 0;
	return bw_mkdir_p(d, 0755);
}

static int tmp_name(const char *target, char *out, size_t n)
{
	char d[4096];
	snprintf(d, sizeof d, "%s", target);
	char *s = strrchr(d, '/');
	if (!s)
		return BW_EINVAL;
	*s = 0;
	int k = snprintf(out, n, "%s/.bw-restore-%d-%lld", d, (int)getpid(),
	                 (long long)bw_now_ns());
	return k < 0 || (size_t)k >= n ? BW_ETOOBIG : 0;
}

/* Copy len bytes at off of in (a segment) to out at 0. */
static int copy_packed_out(int in, int out, int64_t off, uint64_t len)
{
	off_t pos = off;
	while (len) {
		ssize_t w = sendfile(out, in, &pos, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		len -= (uint64_t)w;
	}
	return 0;
}

/* Lay the ranged copies over out, latest first, so that each byte ends
 * with its oldest copy; only those taken before `before` (0: all).  0 or
 * an error code (a copy shorter than its log: BW_EFORMAT). */
static int overlay_ranges(const struct rb_ino *r, int out, int64_t before)
{
	char *buf = malloc(1u << 20);
	int fd = -1, rr = 0;
	const char *open_name = NULL;
	if (!buf)
		return BW_ENOMEM;
	for (size_t i = r->nrg; i-- > 0 && !rr;) {
		const struct rb_range *x = &r->rg[i];
		if (before && x->t >= before)
			continue;
		if (!open_name || strcmp(open_name, x->vault)) {
			if (fd >= 0)
				close(fd);
			fd = open(x->vault, O_RDONLY | O_CLOEXEC);
			open_name = x->vault;
			if (fd < 0) {
				rr = bw_from_errno(errno);
				break;
			}
		}
		for (uint64_t done = 0; done < x->len && !rr;) {
			size_t want = x->len - done > (1u << 20) ? 1u << 20 : (size_t)(x->len - done);
			if (!(rr = bw_pread_full(fd, buf, want, x->at + done)))
				rr = bw_pwrite_full(out, buf, want, x->at + done);
			done += want;
		}
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	return rr;
}

/* Copy a whole copy to out at 0: len bytes at off of a segment (off >= 0),
 * or all of a file of its own; compressed (z) or not.  Sets *size to its
 * length.  0 or an error code. */
static int copy_whole(int in, int out, int64_t off, uint64_t len, int z, off_t *size)
{
	struct stat st;
	if (fstat(in, &st))
		return bw_from_errno(errno);
	if (off < 0 && z) {
		uint64_t n = 0;
		int r = gz_restore(in, out, &n);
		*size = (off_t)n;
		return r;
	}
	if (off < 0) {
		*size = st.st_size;
		return gi_copy_sparse(in, out, (uint64_t)st.st_size);
	}
	*size = (off_t)len;
	if (z) {
		if (len > GI_PACK_MAX)
			return BW_EFORMAT;
		uint8_t *buf = malloc(len ? len : 1);
		int r = buf ? gz_unpack(in, off, len, 1, buf) : BW_ENOMEM;
		if (!r)
			r = bw_pwrite_full(out, buf, len, 0);
		free(buf);
		return r;
	}
	if ((uint64_t)off + len > (uint64_t)st.st_size)
		return BW_EFORMAT; /* the segment is shorter than the journal says */
	return copy_packed_out(in, out, off, len) ? bw_from_errno(errno) : 0;
}

/* Fill out with the old content of r: its first copy, or for a ranged
 * one, a base with the ranges laid over it.  Sets *size. */
static int write_old(const struct rb_ino *r, int out, const char *target, off_t *size)
{
	int in;
	struct stat cur;
	const char *from;
	int64_t off = -1;
	uint64_t len = 0;
	int z = 0;
	if (!r->ranged) {
		from = r->copy;
		off = r->copy_off;
		len = r->copy_len;
		z = r->copy_z;
	} else if (r->base) {
		/* the base: a whole copy taken after the ranged one ... */
		from = r->base;
		off = r->base_off;
		len = r->base_len;
		z = r->base_z;
	} else if (r->cur && !lstat(r->cur, &cur) && cur.st_ino == r->ino &&
	           S_ISREG(cur.st_mode)) {
		from = r->cur; /* ... or the file as it is now */
	} else {
		return bw_errf(BW_ENOENT, "%s: the file is gone and its vault copy holds only "
		               "the ranges that were written", target);
	}
	in = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (in < 0)
		return bw_errf(BW_ENOENT, "%s: %s %s: %s", target,
		               from == r->cur ? "file" : "vault copy", from, strerror(errno));
	int rr = copy_whole(in, out, off, len, z, size);
	close(in);
	if (rr)
		return bw_errf(BW_EIO, "%s: restore failed: %s: %s", target, from,
		               bw_strerror(rr));
	if (!r->ranged)
		return 0;
	*size = (off_t)r->copy_len; /* its size before the first write */
	if ((rr = overlay_ranges(r, out, r->base ? r->base_t : 0)))
		return bw_errf(BW_EIO, "%s: restore failed: vault ranges: %s", target,
		               bw_strerror(rr));
	return 0;
}

static int restore_copy(const struct rb_ino *r, const char *target, int jfd)
{
	char tmp[4200];
	int rr = BW_EIO, out = -1;
	off_t size = 0;
	if (mkparents(target) || tmp_name(target, tmp, sizeof tmp))
		return bw_errf(BW_EIO, "%s: restore failed: %s", target, strerror(errno));
	out = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0)
		return bw_errf(BW_EIO, "%s: restore failed: %s", target, strerror(errno));
	if ((rr = write_old(r, out, target, &size)))
		goto done;
	rr = BW_EIO;
	if (ftruncate(out, size))
		goto done;
	if (fchown(out, r->uid, r->gid) && errno != EPERM)
		goto done;
	fchmod(out, r->mode & 07777);
	struct timespec ts[2] = {{0, UTIME_OMIT},
	                         {r->mtime / 1000000000, r->mtime % 1000000000}};
	futimens(out, ts);
	if (fsync(out) || close(out)) {
		out = -1;
		goto done;
	}
	out = -1;
	if (rename(tmp, target))
		goto done;
	rr = 0;
	struct stat ns;
	if (!lstat(target, &ns))
		rb_journal(jfd, target, &ns, NULL);
done:
	if (rr == BW_EIO && !bw_err_msg()[0])
		rr = bw_errf(BW_EIO, "%s: restore failed: %s", target, strerror(errno));
	if (out >= 0)
		close(out);
	if (rr)
		unlink(tmp);
	return rr;
}

/* A file that was only renamed (or moved over): put it back by name. */
static int rename_back(const struct rb_ino *r, int jfd)
{
	struct stat cur;
	if (r->cur && !strcmp(r->cur, r->orig))
		return 1; /* in place */
	if (!r->cur || lstat(r->cur, &cur) || cur.st_ino != r->ino)
		return bw_errf(BW_ENOENT, "%s: no copy in the vault and the file is gone",
		               r->orig);
	if (mkparents(r->orig) || rename(r->cur, r->orig))
		return bw_errf(BW_EIO, "%s: cannot rename %s back: %s", r->orig, r->cur,
		               strerror(errno));
	rb_journal(jfd, r->orig, &cur, NULL);
	return 0;
}

static int is_target(struct rb *b, const char *path)
{
	for (size_t i = 0; i < b->nall; i++) {
		struct rb_ino *r = b->all[i];
		if (r->touched && r->orig && !strcmp(r->orig, path))
			return 1;
	}
	return 0;
}

/* Every file of the replay, live or set aside, in one list. */
static int gather(struct rb *b)
{
	b->all = malloc((b->n + b->nold + 1) * sizeof *b->all);
	if (!b->all)
		return BW_ENOMEM;
	for (size_t i = 0; i < b->cap; i++)
		if (b->v[i].ino)
			b->all[b->nall++] = &b->v[i];
	for (size_t i = 0; i < b->nold; i++)
		b->all[b->nall++] = &b->old[i];
	return 0;
}

static int read_journal(const char *state_dir, const struct bw_guard_rollback_opts *o,
                        struct rb *b)
{
	char p[4200];
	snprintf(p, sizeof p, "%s/journal.jsonl", state_dir);
	FILE *f = fopen(p, "re");
	if (!f)
		return bw_errf(BW_ENOENT, "guard: no journal in %s (%s)", state_dir,
		               strerror(errno));
	int64_t until = o->until_ns ? o->until_ns : INT64_MAX;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	unsigned long lineno = 0, bad = 0;
	while ((n = getline(&line, &cap, f)) > 0) {
		lineno++;
		if (n > RB_LINE_MAX) {
			bad++;
			continue;
		}
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = 0;
		struct gj_entry e;
		if (gj_entry_parse(line, (size_t)n, &e)) {
			bw_err_clear();
			bad++; /* a torn last line after a crash */
			continue;
		}
		if (e.t > until) {
			gj_entry_release(&e);
			break;
		}
		int inw = e.t >= o->since_ns && pid_in(o, e.pid, e.sid);
		apply(b, &e, inw);
		gj_entry_release(&e);
	}
	free(line);
	fclose(f);
	if (bad)
		bw_warn("guard: %lu of %lu journal lines were unreadable and skipped",
		        bad, lineno);
	return 0;
}

static void rb_ino_free_ranges(struct rb_ino *r)
{
	for (size_t i = 0; i < r->nrg; i++)
		free(r->rg[i].vault);
	free(r->rg);
	free(r->base);
}

static void rb_free(struct rb *b)
{
	for (size_t i = 0; i < b->cap; i++) {
		free(b->v[i].cur);
		free(b->v[i].link);
		free(b->v[i].orig);
		free(b->v[i].copy);
		rb_ino_free_ranges(&b->v[i]);
	}
	for (size_t i = 0; i < b->nold; i++) {
		free(b->old[i].cur);
		free(b->old[i].link);
		free(b->old[i].orig);
		free(b->old[i].copy);
		rb_ino_free_ranges(&b->old[i]);
	}
	free(b->old);
	free(b->all);
	for (size_t i = 0; i < b->ndirs; i++)
		free(b->dirs[i]);
	free(b->dirs);
	free(b->v);
	free(b->paths.v);
}

static void note(const struct bw_guard_rollback_opts *o, const char *a,
                 const char *path, const char *why)
{
	if (o->on_file)
		o->on_file(a, path, why, o->arg);
}

int bw_guard_rollback(const char *state_dir, const struct bw_guard_rollback_opts *o,
                      struct bw_guard_rollback_stats *st)
{
	struct rb b = {0};
	memset(st, 0, sizeof *st);
	int r = read_journal(state_dir, o, &b);
	if (!r)
		r = gather(&b);
	if (r) {
		rb_free(&b);
		return r;
	}
	int jfd = -1;
	if (!o->dry_run) {
		char jp[4200];
		snprintf(jp, sizeof jp, "%s/journal.jsonl", state_dir);
		jfd = gj_open_append(jp);
	}
	/* 1. what they created, and the new names of what they touched */
	for (size_t i = 0; i < b.nall; i++) {
		struct rb_ino *x = b.all[i];
		if (!x->cur || (!x->created && !x->touched))
			continue;
		if (x->touched && x->orig && !strcmp(x->cur, x->orig))
			continue;
		if (x->touched && !x->copy)
			continue; /* only renamed: step 2 renames it back */
		if (is_target(&b, x->cur))
			continue;
		struct stat ls;
		if (lstat(x->cur, &ls) || ls.st_ino != x->ino || !S_ISREG(ls.st_mode))
			continue;
		note(o, "remove", x->cur, NULL);
		if (!o->dry_run && unlink(x->cur)) {
			note(o, "skip", x->cur, strerror(errno));
			st->failed++;
			continue;
		}
		if (!o->dry_run)
			rb_journal_op(jfd, "gone", x->cur, &ls, NULL);
		st->removed++;
	}
	/* 2. put every touched file back */
	for (size_t i = 0; i < b.nall; i++) {
		struct rb_ino *x = b.all[i];
		if (!x->touched || x->created || !x->orig)
			continue;
		if (x->own && !x->copy) {
			note(o, "skip", x->orig, "rewritten in the window by the process that "
			     "made it, which needed no copy: its earlier content was not kept");
			st->failed++;
			continue;
		}
		if (o->dry_run) {
			note(o, "restore", x->orig, NULL);
			st->restored++;
			continue;
		}
		int rr = x->copy ? restore_copy(x, x->orig, jfd) : rename_back(x, jfd);
		if (rr == 1)
			continue;
		if (rr) {
			note(o, "skip", x->orig, bw_err_msg());
			bw_err_clear();
			st->failed++;
			continue;
		}
		note(o, "restore", x->orig, NULL);
		st->restored++;
	}
	/* 3. directories they made, deepest first, if now empty */
	for (size_t i = b.ndirs; i-- > 0;)
		if (b.dirs[i] && !o->dry_run && !rmdir(b.dirs[i]))
			note(o, "remove", b.dirs[i], NULL);
	if (jfd >= 0)
		close(jfd);
	rb_free(&b);
	return st->failed ? BW_EDAMAGED : 0;
}

/* ---- journal lines ---------------------------------------------------- */

static int get_path(json_t *o, const char *key, char **out)
{
	char hk[32];
	json_t *v = json_object_get(o, key);
	*out = NULL;
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		if (strlen(s) >= 4096)
			return BW_EFORMAT;
		*out = strdup(s);
		return *out ? 0 : BW_ENOMEM;
	}
	snprintf(hk, sizeof hk, "%s_hex", key);
	v = json_object_get(o, hk);
	if (!json_is_string(v))
		return 0;
	const char *h = json_string_value(v);
	size_t n = strlen(h);
	if (n % 2 || n / 2 >= 4096)
		return BW_EFORMAT;
	char *b = malloc(n / 2 + 1);
	if (!b)
		return BW_ENOMEM;
	if (bw_hex_decode(h, (uint8_t *)b, n / 2)) {
		free(b);
		return BW_EFORMAT;
	}
	b[n / 2] = 0;
	if (strlen(b) != n / 2) {
		free(b);
		return BW_EFORMAT; /* a NUL inside a path */
	}
	*out = b;
	return 0;
}

static int64_t get_int(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

int gj_entry_parse(const char *line, size_t len, struct gj_entry *e)
{
	json_error_t err;
	if (len > RB_LINE_MAX)
		return bw_errf(BW_ETOOBIG, "journal line of %zu bytes", len);
	json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &err);
	if (!o || !json_is_object(o)) {
		json_decref(o);
		return bw_errf(BW_EFORMAT, "journal line: %s", o ? "not an object" : err.text);
	}
	struct gj_entry x = {0};
	const char *op = json_string_value(json_object_get(o, "op"));
	int r = BW_EFORMAT;
	if (!op)
		goto out;
	x.z = !strcmp(op, "zcopy");
	x.op = !strcmp(op, "link") ? GJ_LINK : !strcmp(op, "copy") || x.z ? GJ_COPY
	     : !strcmp(op, "create") ? GJ_CREATE : !strcmp(op, "delete") ? GJ_DELETE
	     : !strcmp(op, "rename") ? GJ_RENAME : !strcmp(op, "mkdir") ? GJ_MKDIR
	     : !strcmp(op, "rmdir") ? GJ_RMDIR : !strcmp(op, "restore") ? GJ_RESTORE
	     : !strcmp(op, "seen") ? GJ_SEEN : !strcmp(op, "gone") ? GJ_GONE
	     : !strcmp(op, "range") ? GJ_RANGE : !strcmp(op, "own") ? GJ_OWN : GJ_OTHER;
	x.t = get_int(o, "t");
	x.pid = (int)get_int(o, "pid");
	x.sid = (int)get_int(o, "sid");
	x.ino = (uint64_t)get_int(o, "ino");
	x.dev = (uint64_t)get_int(o, "dev");
	x.size = (uint64_t)get_int(o, "size");
	x.mode = (unsigned)get_int(o, "mode");
	x.uid = (unsigned)get_int(o, "uid");
	x.gid = (unsigned)get_int(o, "gid");
	x.mtime = get_int(o, "mtime");
	json_t *offv = json_object_get(o, "off");
	x.off = json_is_integer(offv) ? (int64_t)json_integer_value(offv) : -1;
	x.ranged = json_is_true(json_object_get(o, "ranged"));
	int64_t rat = get_int(o, "at"), rlen = get_int(o, "len");
	if (x.off < -1 || x.size > (1ULL << 50) || rat < 0 || rlen < 0 ||
	    (uint64_t)rat > (1ULL << 50) || (uint64_t)rlen > (1ULL << 30))
		goto out;
	x.at = (uint64_t)rat;
	x.len = (uint64_t)rlen;
	if ((r = get_path(o, "path", &x.path)) || (r = get_path(o, "to", &x.to)) ||
	    (r = get_path(o, "vault", &x.vault)))
		goto out;
	r = BW_EFORMAT;
	if (!x.path && x.op != GJ_OTHER)
		goto out;
	if (x.op == GJ_RENAME && !x.to)
		goto out;
	if ((x.op == GJ_LINK || x.op == GJ_COPY || x.op == GJ_RANGE) && (!x.vault || !x.ino))
		goto out;
	if (x.op == GJ_RANGE && !x.len)
		goto out;
	if ((x.op == GJ_SEEN || x.op == GJ_RESTORE || x.op == GJ_GONE) && !x.ino)
		goto out;
	r = 0;
out:
	json_decref(o);
	if (r) {
		gj_entry_release(&x);
		return bw_errf(r, "journal line: missing or bad fields");
	}
	*e = x;
	return 0;
}

void gj_entry_release(struct gj_entry *e)
{
	free(e->path);
	free(e->to);
	free(e->vault);
	e->path = e->to = e->vault = NULL;
}
