/* bw_restore through the engine API: a round trip, selections, hard
 * links, verification and the damage contract (BW_EDAMAGED, on_error with
 * the path, the rest restored). */
#include <bulwark/repo.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"

static char base[64];

static void put_file(const char *rel, size_t n, uint32_t seed)
{
	char p[256];
	snprintf(p, sizeof p, "%s/src/%s", base, rel);
	FILE *f = fopen(p, "wb");
	CHECK(f != NULL);
	if (!f)
		return;
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		fputc((int)(seed >> 16) & 0xff, f);
	}
	fclose(f);
}

static int same_file(const char *a, const char *b)
{
	struct bw_buf x, y;
	bw_buf_init(&x, 64 << 20);
	bw_buf_init(&y, 64 << 20);
	int ok = !bw_file_read(a, 64 << 20, &x) && !bw_file_read(b, 64 << 20, &y) &&
	         x.len == y.len && (!x.len || !memcmp(x.data, y.data, x.len));
	bw_buf_release(&x);
	bw_buf_release(&y);
	return ok;
}

struct errs {
	int n, saw_a;
};

static void on_error(const char *path, const char *msg, void *arg)
{
	struct errs *e = arg;
	size_t l = strlen(path);
	e->n++;
	if (l >= 2 && !strcmp(path + l - 2, "/a") && strstr(msg, "pack"))
		e->saw_a = 1;
}

static int restore_to(struct bw_repo *r, const struct bw_snapshot *s,
                      struct bw_restore_opts *o, const char *dir,
                      struct bw_restore_stats *st, struct errs *e)
{
	char t[128];
	snprintf(t, sizeof t, "%s/%s", base, dir);
	o->target = t;
	o->on_error = on_error;
	o->error_arg = e;
	memset(e, 0, sizeof *e);
	return bw_restore(r, s, o, st);
}

/* Flip bytes in the middle of the largest pack. */
static void damage_largest_pack(void)
{
	char dpath[128], best[1024] = "";
	off_t bsize = 0;
	snprintf(dpath, sizeof dpath, "%s/repo/data", base);
	DIR *d = opendir(dpath);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char sub[512];
		snprintf(sub, sizeof sub, "%s/%s", dpath, de->d_name);
		DIR *d2 = opendir(sub);
		struct dirent *e2;
		while (d2 && (e2 = readdir(d2))) {
			char p[1024];
			struct stat st;
			snprintf(p, sizeof p, "%s/%s", sub, e2->d_name);
			if (e2->d_name[0] != '.' && !stat(p, &st) && st.st_size > bsize) {
				bsize = st.st_size;
				snprintf(best, sizeof best, "%s", p);
			}
		}
		if (d2)
			closedir(d2);
	}
	if (d)
		closedir(d);
	CHECK(bsize > 0);
	int fd = open(best, O_RDWR);
	CHECK(fd >= 0);
	if (fd >= 0) {
		CHECK(pwrite(fd, "XXXX", 4, bsize / 2) == 4);
		close(fd);
	}
}

int main(void)
{
	struct bw_repo *r = NULL;
	struct bw_snapshot s;
	struct bw_restore_opts o;
	struct bw_restore_stats st;
	struct errs e;
	char p[256], q[256];

	CHECK(bw_crypto_init() == 0);
	snprintf(base, sizeof base, "/tmp/bw-test-restore.XXXXXX");
	CHECK(mkdtemp(base) != NULL);
	setenv("XDG_CACHE_HOME", base, 1);
	snprintf(p, sizeof p, "%s/src/d", base);
	CHECK(bw_mkdir_p(p, 0755) == 0);
	put_file("a", 3u << 20, 1); /* several blobs */
	put_file("b", 1000, 2);
	put_file("d/e", 5000, 3);
	snprintf(p, sizeof p, "%s/src/b", base);
	snprintf(q, sizeof q, "%s/src/c", base);
	CHECK(link(p, q) == 0);
	snprintf(q, sizeof q, "%s/src/sym", base);
	CHECK(symlink("b", q) == 0);

	struct bw_init_opts io = {{0, 0, 0}, 0, 1, 64 << 10, 0};
	snprintf(p, sizeof p, "%s/repo", base);
	CHECK(bw_repo_init(p, "pw", 2, &io, &r) == 0);
	if (!r)
		TEST_DONE();
	snprintf(p, sizeof p, "%s/src", base);
	const char *paths[] = {p};
	struct bw_backup_opts bo;
	memset(&bo, 0, sizeof bo);
	bo.paths = paths;
	bo.npaths = 1;
	CHECK(bw_backup(r, &bo, &s) == 0);

	/* everything, verified */
	memset(&o, 0, sizeof o);
	o.verify = 1;
	CHECK_EQ_INT(restore_to(r, &s, &o, "t1", &st, &e), 0);
	CHECK_EQ_INT(st.files, 4);  /* a, b, c (a link), d/e */
	CHECK_EQ_INT(st.others, 1); /* sym */
	CHECK_EQ_INT(st.verified, 4);
	CHECK_EQ_INT(st.errors, 0);
	CHECK_EQ_INT(st.bytes, (3u << 20) + 1000 + 5000);
	CHECK_EQ_INT(e.n, 0);
	const char *names[] = {"a", "b", "c", "d/e"};
	for (int i = 0; i < 4; i++) {
		snprintf(p, sizeof p, "%s/src/%s", base, names[i]);
		snprintf(q, sizeof q, "%s/t1%s/src/%s", base, base, names[i]);
		CHECK(same_file(p, q));
	}
	struct stat sb, sc;
	snprintf(p, sizeof p, "%s/t1%s/src/b", base, base);
	snprintf(q, sizeof q, "%s/t1%s/src/c", base, base);
	CHECK(!stat(p, &sb) && !stat(q, &sc) && sb.st_ino == sc.st_ino);

	/* a second restore to the same place refuses to replace files */
	CHECK_EQ_INT(restore_to(r, &s, &o, "t1", &st, &e), 0);
	CHECK_EQ_INT(st.files, 0);
	CHECK(st.errors >= 4);
	CHECK(e.n >= 4);

	/* include: only d/e and its parents */
	memset(&o, 0, sizeof o);
	snprintf(p, sizeof p, "%s/src/d/*", base);
	const char *inc[] = {p};
	o.includes = inc;
	o.nincludes = 1;
	CHECK_EQ_INT(restore_to(r, &s, &o, "t2", &st, &e), 0);
	CHECK_EQ_INT(st.files, 1);
	snprintf(q, sizeof q, "%s/t2%s/src/a", base, base);
	CHECK(access(q, F_OK) != 0);

	/* a path that is not in the snapshot */
	memset(&o, 0, sizeof o);
	o.subpath = "/no/such/path";
	CHECK_EQ_INT(restore_to(r, &s, &o, "t3", &st, &e), BW_ENOENT);

	/* damage: reported with the path, the rest restored */
	damage_largest_pack();
	memset(&o, 0, sizeof o);
	CHECK_EQ_INT(restore_to(r, &s, &o, "t4", &st, &e), BW_EDAMAGED);
	CHECK(e.saw_a);
	CHECK(st.errors >= 1);
	CHECK_EQ_INT(st.files, 4);
	snprintf(q, sizeof q, "%s/t4%s/src/a", base, base);
	CHECK(!stat(q, &sb) && sb.st_size == (off_t)(3u << 20));
	snprintf(p, sizeof p, "%s/src/d/e", base);
	snprintf(q, sizeof q, "%s/t4%s/src/d/e", base, base);
	CHECK(same_file(p, q));

	bw_snapshot_release(&s);
	bw_repo_close(r);
	snprintf(p, sizeof p, "rm -rf '%s'", base);
	CHECK(system(p) == 0);
	TEST_DONE();
}
