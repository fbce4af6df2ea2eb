/* Write episodes: what each tree has copied of a file it writes.
 *
 * An episode runs from a file's first write open to its last close.  Every
 * tree (session) that writes in it gets a struct gi_wcopy: the copy of the
 * content before its own first write.  A tree that has its copy writes
 * freely; when every tree that opened the file for writing has one, an
 * ignore mark makes the rest of the episode free of events.  Keeping one
 * copy per tree (and not one per file) matters both ways: a second writer
 * that joins an episode gets a copy of its own, so an attacker cannot hide
 * behind a benign program that holds the file open, and writers taking
 * turns do not copy the file again on every turn.
 *
 * Files up to 1 MiB are copied whole before the tree's first write (at
 * the open for O_TRUNC).  Larger ones are copied by ranges: each write event carries the
 * range it will change, and only the 4 KiB pages of that range not yet
 * copied by this tree are copied, into a sparse file of the old size at
 * the same offsets.  While any writer lacks a whole copy every read and
 * write of the file costs an event, so once the events would have cost
 * more than a copy of the file (one event is priced as 64 KiB of copy),
 * one snapshot of it is taken for all of them and the rest of the episode
 * is free: at most about twice what the cheaper choice would have cost,
 * whatever the access pattern.  A file that needed such a snapshot once
 * is copied whole at the first write of its later episodes (guard.c).
 * A ranged copy is restored by laying its ranges over the snapshot
 * (rollback.c). */
#include "guard_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PAGE 4096ULL
#define EVENT_PRICE (64ULL << 10)

struct gi_wcopy *gi_wc_find(struct gi_inode *in, pid_t sid)
{
	for (int i = 0; i < in->nwc; i++)
		if (in->wc[i].sid == sid)
			return &in->wc[i];
	return NULL;
}

struct gi_wcopy *gi_wc_add(struct gi_inode *in, pid_t sid)
{
	struct gi_wcopy *w = gi_wc_find(in, sid);
	if (w)
		return w;
	if (in->nwc == in->wccap) {
		int nc = in->wccap ? in->wccap * 2 : 2;
		struct gi_wcopy *nv = realloc(in->wc, (size_t)nc * sizeof *nv);
		if (!nv)
			return NULL;
		in->wc = nv;
		in->wccap = nc;
	}
	w = &in->wc[in->nwc++];
	memset(w, 0, sizeof *w);
	w->sid = sid;
	w->ns = -1;
	w->off = -1;
	w->vfd = -1;
	return w;
}

int gi_wc_all_copied(const struct gi_inode *in)
{
	for (int i = 0; i < in->nwc; i++)
		if (!in->wc[i].copied)
			return 0;
	return 1;
}

void gi_wc_end(struct gi_inode *in)
{
	for (int i = 0; i < in->nwc; i++) {
		free(in->wc[i].pages);
		if (in->wc[i].vfd >= 0)
			close(in->wc[i].vfd);
	}
	free(in->wc);
	in->wc = NULL;
	in->nwc = in->wccap = 0;
	in->events = 0;
}

static int page_set(const struct gi_wcopy *w, uint64_t p)
{
	return (w->pages[p / 64] >> (p % 64)) & 1;
}

/* The next run of pages from *p (below p1) whose copied bit is `set`, at
 * most maxp pages, as a byte range clipped to the old size; moves *p past
 * it.  0 when there is none. */
static int next_run(const struct gi_wcopy *w, uint64_t *p, uint64_t p1, int set,
                    uint64_t maxp, struct gi_run *r)
{
	uint64_t a = *p;
	while (a < p1 && page_set(w, a) != set)
		a++;
	uint64_t b = a;
	while (b < p1 && page_set(w, b) == set && b - a < maxp)
		b++;
	*p = b;
	if (b == a)
		return 0;
	r->at = a * PAGE;
	r->len = (b - a) * PAGE;
	if (r->at + r->len > w->size)
		r->len = w->size - r->at;
	return 1;
}

/* Copy pages [p0, p1) of fd into the ranged copy, one run at a time. */
static int copy_pages(struct bw_guard *g, int fd, const struct stat *st,
                      const char *path, pid_t pid, struct gi_wcopy *w,
                      uint64_t p0, uint64_t p1)
{
	if (!gi_copybuf(g))
		return BW_ENOMEM;
	char vp[4300];
	gi_vault_copy_path(g, w->ns, st->st_ino, -1, vp, sizeof vp);
	uint64_t p = p0;
	struct gi_run run;
	while (next_run(w, &p, p1, 0, (1u << 20) / PAGE, &run)) {
		uint64_t at = run.at, len = run.len;
		ssize_t n = pread(fd, g->copybuf, len, (off_t)at);
		if (n < 0)
			return bw_from_errno(errno);
		if ((uint64_t)n < len) /* shorter now: the rest reads as zeros */
			memset(g->copybuf + n, 0, len - (uint64_t)n);
		/* zeros stay a hole of the sparse copy: they read back the same */
		uint64_t stored = 0;
		int e = gi_write_nonzero(w->vfd, g->copybuf, len, at, &stored);
		if (e)
			return e;
		for (uint64_t k = at / PAGE; k < p; k++)
			w->pages[k / 64] |= 1ULL << (k % 64);
		w->ncopied += p - at / PAGE;
		g->vault_bytes += stored;
		gi_journal_range(g, pid, path, st, vp, at, len);
	}
	return 0;
}

/* The start of a ranged copy: a sparse file of the old size. */
static int ranged_open(struct bw_guard *g, const struct stat *st, const char *path,
                       pid_t pid, struct gi_wcopy *w)
{
	uint64_t np = ((uint64_t)st->st_size + PAGE - 1) / PAGE;
	w->pages = calloc((np + 63) / 64, sizeof *w->pages);
	if (!w->pages)
		return BW_ENOMEM;
	w->ns = bw_now_ns();
	char name[64], vp[4300];
	snprintf(name, sizeof name, "%lld-%llu", (long long)w->ns,
	         (unsigned long long)st->st_ino);
	w->vfd = openat(g->copies_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (w->vfd < 0 || ftruncate(w->vfd, st->st_size)) {
		int e = bw_from_errno(errno);
		if (w->vfd >= 0) {
			close(w->vfd);
			unlinkat(g->copies_fd, name, 0);
		}
		w->vfd = -1;
		free(w->pages);
		w->pages = NULL;
		w->ns = -1;
		return e;
	}
	w->npages = np;
	w->size = (uint64_t)st->st_size;
	w->off = -1;
	g->copies_n++;
	g->copies++;
	gi_vault_copy_path(g, w->ns, st->st_ino, -1, vp, sizeof vp);
	gi_journal_copy(g, pid, path, st, vp, -1, 1, 0);
	return 0;
}

int gi_wc_before_write(struct bw_guard *g, int fd, const struct stat *st,
                       const char *path, pid_t pid, struct gi_wcopy *w,
                       int have_range, uint64_t at, uint64_t count)
{
	if (w->copied)
		return 0;
	uint64_t size = (uint64_t)st->st_size;
	if (!w->pages) {
		if (size == 0) {
			w->ns = 0; /* the file was empty: nothing to lose */
			w->size = 0;
			w->copied = 1;
			return 0;
		}
		if (size <= GI_PACK_MAX || !have_range) {
			int r = gi_vault_copy(g, fd, st, path, pid, w);
			if (!r)
				w->copied = 1;
			return r;
		}
		if (g->vault_bytes + size > g->pol.vault_budget)
			gi_vault_maintain(g);
		int r = ranged_open(g, st, path, pid, w);
		if (r)
			return bw_errf(r, "vault copy of %s: %s", path, bw_strerror(r));
	}
	uint64_t p0 = at / PAGE, p1 = count ? (at + count + PAGE - 1) / PAGE : w->npages;
	if (p1 > w->npages)
		p1 = w->npages; /* past the old end: nothing was there */
	int r = 0;
	if (p0 < p1)
		r = copy_pages(g, fd, st, path, pid, w, p0, p1);
	if (r)
		return bw_errf(r, "vault copy of %s: %s", path, bw_strerror(r));
	if (w->ncopied == w->npages)
		w->copied = 1;
	return 0;
}

int gi_wc_event(struct bw_guard *g, int fd, const struct stat *st,
                const char *path, struct gi_inode *in)
{
	if (!in->nwc || gi_wc_all_copied(in))
		return 0;
	in->events++;
	if (in->events * EVENT_PRICE < (uint64_t)st->st_size)
		return 0;
	char own[4096];
	if (!path) {
		if (gi_fd_path(fd, own, sizeof own))
			return BW_EIO;
		path = own;
	}
	/* one snapshot of the file as it is now, for every tree still without
	 * a whole copy: for a tree with ranges it is the base they are laid
	 * over (what it wrote after this is undone by the snapshot itself),
	 * for one with none it is its copy */
	struct gi_wcopy snap;
	memset(&snap, 0, sizeof snap);
	pid_t first = 0;
	for (int i = 0; i < in->nwc && !first; i++)
		if (!in->wc[i].copied)
			first = in->wc[i].sid;
	int r = gi_vault_copy(g, fd, st, path, first, &snap);
	if (r)
		return r;
	in->snapped = 1;
	char vp[4300];
	gi_vault_copy_path(g, snap.ns, st->st_ino, snap.off, vp, sizeof vp);
	for (int i = 0; i < in->nwc; i++) {
		struct gi_wcopy *w = &in->wc[i];
		if (w->copied)
			continue;
		if (w->sid != first)
			gi_journal_copy(g, w->sid, path, st, vp, snap.off, 0, snap.z);
		if (!w->pages) {
			w->ns = snap.ns;
			w->off = snap.off;
			w->size = snap.size;
			w->z = snap.z;
		}
		w->copied = 1;
	}
	in->events = 0;
	return 0;
}

int gi_wc_runs(const struct gi_wcopy *w, struct gi_run *out, int max, uint64_t budget)
{
	int n = 0;
	uint64_t p = 0, used = 0;
	struct gi_run run;
	while (n < max && used < budget && next_run(w, &p, w->npages, 1, UINT64_MAX, &run)) {
		if (run.len > budget - used)
			run.len = budget - used;
		out[n++] = run;
		used += run.len;
	}
	return n;
}
