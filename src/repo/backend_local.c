/* Local directory backend.
 *
 * Layout: config, keys/, data/00..ff/, index/, snapshots/, locks/, plans/.
 * Small objects are written with link(2) from a synced temp file (never
 * overwriting); packs are staged in O_TMPFILE descriptors, so a killed
 * process leaves no partial pack behind, then linked into place. */
#include "backend.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FD_CACHE 32

struct fd_slot {
	char name[72];
	int fd, refs;
	uint64_t last;
};

struct local {
	struct bw_backend be;
	char *root;
	pthread_mutex_t lock;
	struct fd_slot slots[FD_CACHE];
	uint64_t tick;
};

static const char *dirs[BW_OBJ__N] = {
	"", "keys", "data", "index", "snapshots", "locks", "plans",
};

static int valid_name(const char *name)
{
	size_t n = strlen(name);
	if (n < 2 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((name[i] >= '0' && name[i] <= '9') ||
		      (name[i] >= 'a' && name[i] <= 'f')))
			return 0;
	return 1;
}

static int obj_path(struct local *l, enum bw_obj t, const char *name,
                    char *out, size_t n)
{
	int w;
	if (t == BW_OBJ_CONFIG)
		w = snprintf(out, n, "%s/config", l->root);
	else if (!valid_name(name))
		return bw_errf(BW_EINVAL, "invalid object name '%s'", name);
	else if (t == BW_OBJ_PACK)
		w = snprintf(out, n, "%s/data/%.2s/%s", l->root, name, name);
	else
		w = snprintf(out, n, "%s/%s/%s", l->root, dirs[t], name);
	return w < 0 || (size_t)w >= n ? BW_ETOOBIG : 0;
}

struct list_ctx {
	bw_list_fn cb;
	void *arg;
};

static int list_dir(const char *path, bw_list_fn cb, void *arg)
{
	DIR *d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : bw_errf(bw_from_errno(errno), "%s: %s", path, strerror(errno));
	int r = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!valid_name(de->d_name))
			continue; /* temp files, dot entries */
		struct stat st;
		if (fstatat(dirfd(d), de->d_name, &st, 0))
			continue; /* removed meanwhile */
		if (!S_ISREG(st.st_mode))
			continue;
		if ((r = cb(arg, de->d_name, (uint64_t)st.st_size)))
			break;
	}
	closedir(d);
	return r;
}

static int l_list(struct bw_backend *b, enum bw_obj t, bw_list_fn cb, void *arg)
{
	struct local *l = (struct local *)b;
	char p[4096];
	if (t == BW_OBJ_CONFIG) {
		struct stat st;
		snprintf(p, sizeof p, "%s/config", l->root);
		if (stat(p, &st))
			return 0;
		return cb(arg, "config", (uint64_t)st.st_size);
	}
	if (t != BW_OBJ_PACK) {
		snprintf(p, sizeof p, "%s/%s", l->root, dirs[t]);
		return list_dir(p, cb, arg);
	}
	for (int i = 0; i < 256; i++) {
		snprintf(p, sizeof p, "%s/data/%02x", l->root, i);
		int r = list_dir(p, cb, arg);
		if (r)
			return r;
	}
	return 0;
}

/* Packs are read many times in a restore: keep their descriptors open. */
static int fd_get(struct local *l, enum bw_obj t, const char *name, int *slot)
{
	char p[4096];
	int r = obj_path(l, t, name, p, sizeof p);
	if (r)
		return r;
	*slot = -1;
	if (t != BW_OBJ_PACK) {
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		return fd < 0 ? bw_from_errno(errno) : fd;
	}
	pthread_mutex_lock(&l->lock);
	int victim = -1;
	for (int i = 0; i < FD_CACHE; i++) {
		struct fd_slot *s = &l->slots[i];
		if (s->fd > 0 && !strcmp(s->name, name)) {
			s->refs++;
			s->last = ++l->tick;
			*slot = i;
			pthread_mutex_unlock(&l->lock);
			return s->fd;
		}
		if (s->refs == 0 && (victim < 0 || s->fd <= 0 ||
		                     (l->slots[victim].fd > 0 && s->last < l->slots[victim].last)))
			victim = i;
	}
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = bw_from_errno(errno);
		pthread_mutex_unlock(&l->lock);
		return r;
	}
	if (victim >= 0) {
		struct fd_slot *s = &l->slots[victim];
		if (s->fd > 0)
			close(s->fd);
		s->fd = fd;
		s->refs = 1;
		s->last = ++l->tick;
		snprintf(s->name, sizeof s->name, "%s", name);
		*slot = victim;
	}
	pthread_mutex_unlock(&l->lock);
	return fd;
}

static void fd_put(struct local *l, int fd, int slot)
{
	if (slot < 0) {
		close(fd);
		return;
	}
	pthread_mutex_lock(&l->lock);
	l->slots[slot].refs--;
	pthread_mutex_unlock(&l->lock);
}

static void fd_forget(struct local *l, const char *name)
{
	pthread_mutex_lock(&l->lock);
	for (int i = 0; i < FD_CACHE; i++) {
		struct fd_slot *s = &l->slots[i];
		if (s->fd > 0 && s->refs == 0 && !strcmp(s->name, name)) {
			close(s->fd);
			s->fd = 0;
			s->name[0] = 0;
		}
	}
	pthread_mutex_unlock(&l->lock);
}

static int l_read(struct bw_backend *b, enum bw_obj t, const char *name,
                  uint64_t off, size_t len, struct bw_buf *out)
{
	struct local *l = (struct local *)b;
	int slot;
	int fd = fd_get(l, t, name, &slot);
	if (fd < 0)
		return fd;
	int r = 0;
	if (len == 0) {
		struct stat st;
		if (fstat(fd, &st)) {
			r = bw_from_errno(errno);
			goto out;
		}
		if ((uint64_t)st.st_size < off) {
			r = BW_EFORMAT;
			goto out;
		}
		len = (size_t)((uint64_t)st.st_size - off);
		if (!len)
			goto out;
	}
	if ((r = bw_buf_reserve(out, len)))
		goto out;
	if ((r = bw_pread_full(fd, out->data + out->len, len, off)))
		goto out;
	out->len += len;
out:
	fd_put(l, fd, slot);
	return r;
}

static int l_write(struct bw_backend *b, enum bw_obj t, const char *name,
                   const void *p, size_t n)
{
	struct local *l = (struct local *)b;
	char path[4096];
	int r = obj_path(l, t, name, path, sizeof path);
	if (r)
		return r;
	return bw_file_write_atomic(path, p, n, 0600, 1);
}

/* Temp descriptors: O_TMPFILE where the filesystem has it, else a named
 * file under tmp/ that is remembered so write_temp can rename it. */
struct named_tmp {
	int fd;
	char path[4096];
	struct named_tmp *next;
};
static struct named_tmp *named_tmps;
static pthread_mutex_t named_lock = PTHREAD_MUTEX_INITIALIZER;

static int l_temp(struct bw_backend *b, int *fd)
{
	struct local *l = (struct local *)b;
	char p[4096];
	snprintf(p, sizeof p, "%s/data", l->root);
	int f = open(p, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (f >= 0) {
		*fd = f;
		return 0;
	}
	struct named_tmp *t = calloc(1, sizeof *t);
	if (!t)
		return BW_ENOMEM;
	uint8_t rnd[8];
	for (int i = 0; i < 8; i++)
		rnd[i] = (uint8_t)(bw_now_ns() >> (i * 3)) ^ (uint8_t)getpid();
	char hex[17];
	bw_hex_encode(rnd, 8, hex);
	snprintf(t->path, sizeof t->path, "%s/tmp/.pack-%s-%d", l->root, hex, (int)getpid());
	f = open(t->path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
	if (f < 0) {
		int e = errno;
		free(t);
		return bw_errf(bw_from_errno(e), "%s: %s", p, strerror(e));
	}
	t->fd = f;
	pthread_mutex_lock(&named_lock);
	t->next = named_tmps;
	named_tmps = t;
	pthread_mutex_unlock(&named_lock);
	*fd = f;
	return 0;
}

static struct named_tmp *take_named(int fd)
{
	pthread_mutex_lock(&named_lock);
	struct named_tmp **pp = &named_tmps, *t = NULL;
	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->fd == fd) {
			t = *pp;
			*pp = t->next;
			break;
		}
	pthread_mutex_unlock(&named_lock);
	return t;
}

static int l_write_temp(struct bw_backend *b, enum bw_obj t, const char *name,
                        int fd, uint64_t n)
{
	struct local *l = (struct local *)b;
	char path[4096];
	struct named_tmp *nt = take_named(fd);
	int r = obj_path(l, t, name, path, sizeof path);
	if (r)
		goto out;
	/* start writeback now; durability comes from sync() before any
	 * index names this pack, so workers never wait on the disk here */
	if (ftruncate(fd, (off_t)n) ||
	    sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE)) {
		r = bw_errf(bw_from_errno(errno), "%s: %s", path, strerror(errno));
		goto out;
	}
	if (nt) {
		if (link(nt->path, path) && errno != EEXIST)
			r = bw_errf(bw_from_errno(errno), "%s: %s", path, strerror(errno));
	} else {
		char proc[64];
		snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
		if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) &&
		    errno != EEXIST)
			r = bw_errf(bw_from_errno(errno), "%s: %s", path, strerror(errno));
	}
	/* EEXIST: the same content is already stored under its hash: fine */
out:
	close(fd);
	if (nt) {
		unlink(nt->path);
		free(nt);
	}
	return r;
}

static int l_remove(struct bw_backend *b, enum bw_obj t, const char *name)
{
	struct local *l = (struct local *)b;
	char path[4096];
	int r = obj_path(l, t, name, path, sizeof path);
	if (r)
		return r;
	if (t == BW_OBJ_PACK)
		fd_forget(l, name);
	if (unlink(path))
		return bw_from_errno(errno);
	char *s = strrchr(path, '/');
	*s = 0;
	return bw_fsync_dir(path);
}

static int l_stat(struct bw_backend *b, enum bw_obj t, const char *name,
                  uint64_t *size)
{
	struct local *l = (struct local *)b;
	char path[4096];
	struct stat st;
	int r = obj_path(l, t, name, path, sizeof path);
	if (r)
		return r;
	if (stat(path, &st))
		return bw_from_errno(errno);
	*size = (uint64_t)st.st_size;
	return 0;
}

static int l_sync(struct bw_backend *b)
{
	struct local *l = (struct local *)b;
	int fd = open(l->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return bw_from_errno(errno);
	int r = syncfs(fd) ? bw_from_errno(errno) : 0;
	close(fd);
	return r;
}

static void l_free(struct bw_backend *b)
{
	struct local *l = (struct local *)b;
	for (int i = 0; i < FD_CACHE; i++)
		if (l->slots[i].fd > 0)
			close(l->slots[i].fd);
	pthread_mutex_destroy(&l->lock);
	free(l->root);
	free(l);
}

static const struct bw_backend_ops local_ops = {
	.list = l_list,
	.read = l_read,
	.write = l_write,
	.temp = l_temp,
	.write_temp = l_write_temp,
	.remove = l_remove,
	.stat = l_stat,
	.sync = l_sync,
	.free = l_free,
};

int bw_backend_local_open(const char *path, int create, struct bw_backend **out)
{
	char p[4096];
	int r = 0;
	struct stat st;
	if (strlen(path) > 3000)
		return bw_errf(BW_ETOOBIG, "repository path too long");
	snprintf(p, sizeof p, "%s/config", path);
	if (create) {
		if (!stat(p, &st))
			return bw_errf(BW_EEXIST, "%s: a repository already exists here", path);
		if ((r = bw_mkdir_p(path, 0700)))
			return r;
		static const char *sub[] = {"keys", "data", "index", "snapshots",
		                            "locks", "plans", "tmp"};
		for (size_t i = 0; i < sizeof sub / sizeof *sub; i++) {
			snprintf(p, sizeof p, "%s/%s", path, sub[i]);
			if (mkdir(p, 0700) && errno != EEXIST)
				return bw_errf(bw_from_errno(errno), "%s: %s", p, strerror(errno));
		}
		for (int i = 0; i < 256; i++) {
			snprintf(p, sizeof p, "%s/data/%02x", path, i);
			if (mkdir(p, 0700) && errno != EEXIST)
				return bw_errf(bw_from_errno(errno), "%s: %s", p, strerror(errno));
		}
	} else if (stat(p, &st)) {
		if (stat(path, &st))
			return bw_errf(BW_ENOENT, "%s: no such directory", path);
		return bw_errf(BW_ENOENT, "%s: not a bulwark repository (no config)", path);
	}
	struct local *l = calloc(1, sizeof *l);
	if (!l || !(l->root = strdup(path))) {
		free(l);
		return BW_ENOMEM;
	}
	pthread_mutex_init(&l->lock, NULL);
	l->be.ops = &local_ops;
	l->be.location = l->root;
	*out = &l->be;
	return 0;
}
