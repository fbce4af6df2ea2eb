/* Backup helpers around the walk (see backup_prep.h). */
#include "backup_prep.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void bw_vdir_free(struct vdir *v)
{
	for (size_t i = 0; i < v->nkids; i++)
		bw_vdir_free(&v->kids[i]);
	free(v->kids);
	free(v->name);
	free(v->path);
}

int bw_vdir_add(struct vdir *root, const char *abs)
{
	struct vdir *cur = root;
	const char *p = abs;
	while (*p == '/')
		p++;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (cur->leaf)
			return 0; /* an ancestor is saved whole already */
		struct vdir *k = NULL;
		for (size_t i = 0; i < cur->nkids; i++)
			if (strlen(cur->kids[i].name) == l && !memcmp(cur->kids[i].name, p, l))
				k = &cur->kids[i];
		if (!k) {
			void *v = realloc(cur->kids, (cur->nkids + 1) * sizeof *cur->kids);
			if (!v)
				return BW_ENOMEM;
			cur->kids = v;
			k = &cur->kids[cur->nkids++];
			memset(k, 0, sizeof *k);
			k->name = strndup(p, l);
			k->path = strndup(abs, (size_t)(p - abs) + l);
			if (!k->name || !k->path)
				return BW_ENOMEM;
		}
		cur = k;
		p += l;
		while (*p == '/')
			p++;
	}
	cur->leaf = 1;
	/* a leaf replaces anything below it */
	for (size_t i = 0; i < cur->nkids; i++)
		bw_vdir_free(&cur->kids[i]);
	free(cur->kids);
	cur->kids = NULL;
	cur->nkids = 0;
	return 0;
}

int bw_vdir_cmp(const void *a, const void *b)
{
	const struct vdir *x = a, *y = b;
	return bw_node_cmp_name(x->name, strlen(x->name), y->name, strlen(y->name));
}


static void *refresh_main(void *arg)
{
	struct bw_refresher *f = arg;
	pthread_mutex_lock(&f->mu);
	while (!f->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += SESSION_REFRESH_S;
		if (pthread_cond_timedwait(&f->cv, &f->mu, &ts) == ETIMEDOUT && !f->stop) {
			pthread_mutex_unlock(&f->mu);
			if (bw_session_refresh(f->s))
				bw_warn("cannot refresh the session lock: %s", bw_err_msg());
			bw_err_clear();
			pthread_mutex_lock(&f->mu);
		}
	}
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

void bw_refresher_start(struct bw_refresher *f, struct bw_session *s)
{
	memset(f, 0, sizeof *f);
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	f->s = s;
	f->inited = 1;
	if (s && !pthread_create(&f->thread, NULL, refresh_main, f))
		f->running = 1;
}

void bw_refresher_stop(struct bw_refresher *f)
{
	if (!f->inited)
		return;
	if (f->running) {
		pthread_mutex_lock(&f->mu);
		f->stop = 1;
		pthread_cond_signal(&f->cv);
		pthread_mutex_unlock(&f->mu);
		pthread_join(f->thread, NULL);
	}
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cv);
}

/* Snapshot metadata is JSON: paths, tags and host must be UTF-8 (names
 * inside the tree may be any bytes). */
static int utf8_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		int n = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 ? 1 :
		        (*p & 0xf0) == 0xe0 ? 2 : (*p & 0xf8) == 0xf0 ? 3 : -1;
		if (n < 0 || (n == 1 && *p < 0xc2))
			return 0;
		p++;
		for (int i = 0; i < n; i++, p++)
			if ((*p & 0xc0) != 0x80)
				return 0;
	}
	return 1;
}

int bw_backup_check_utf8(const struct bw_backup_opts *o)
{
	for (size_t i = 0; i < o->npaths; i++)
		if (!utf8_ok(o->paths[i]))
			return bw_errf(BW_EINVAL, "path '%s' is not valid UTF-8: name a "
			               "directory above it instead (names inside may be any bytes)",
			               o->paths[i]);
	for (size_t i = 0; i < o->ntags; i++)
		if (!utf8_ok(o->tags[i]))
			return bw_errf(BW_EINVAL, "tag '%s' is not valid UTF-8", o->tags[i]);
	if (o->hostname && !utf8_ok(o->hostname))
		return bw_errf(BW_EINVAL, "host name '%s' is not valid UTF-8", o->hostname);
	if (o->stdin_name && !utf8_ok(o->stdin_name))
		return bw_errf(BW_EINVAL, "--stdin-filename is not valid UTF-8");
	return 0;
}

int bw_str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char **bw_strv_dup(const char *const *v, size_t n)
{
	char **o = calloc(n ? n : 1, sizeof *o);
	if (!o)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!(o[i] = strdup(v[i]))) {
			while (i--)
				free(o[i]);
			free(o);
			return NULL;
		}
	return o;
}

/* Make each path absolute (without resolving symlinks in the last part). */
int bw_path_absolute(const char *p, char **out)
{
	char cwd[4096];
	struct bw_buf b;
	bw_buf_init(&b, 1 << 16);
	int r = 0;
	if (p[0] != '/') {
		if (!getcwd(cwd, sizeof cwd))
			return bw_from_errno(errno);
		r = bw_path_join(&b, cwd, p);
	} else {
		r = bw_buf_append(&b, p, strlen(p));
	}
	if (r) {
		bw_buf_release(&b);
		return r;
	}
	/* normalise "//", "/./", trailing '/' and ".." lexically */
	char *s = (char *)bw_buf_cstr(&b), *o = s;
	char *w = s;
	while (*o) {
		if (o[0] == '/' && (o[1] == '/' || o[1] == 0) && w != s) {
			o++;
			continue;
		}
		if (o[0] == '/' && o[1] == '.' && (o[2] == '/' || o[2] == 0)) {
			o += 2;
			continue;
		}
		if (o[0] == '/' && o[1] == '.' && o[2] == '.' && (o[3] == '/' || o[3] == 0)) {
			while (w > s && *--w != '/')
				;
			o += 3;
			continue;
		}
		*w++ = *o++;
	}
	if (w == s)
		*w++ = '/';
	*w = 0;
	*out = strdup(s);
	bw_buf_release(&b);
	return *out ? 0 : BW_ENOMEM;
}
