/* The guard's settings parser and its journal replay.  The rollback runs
 * on real files in a temporary directory against a journal written the
 * way the guard writes it: an attack that encrypts one file in place,
 * renames another, deletes a third, replaces a fourth with a new file and
 * drops a ransom note, next to changes by another process that must stay. */
#include <bulwark/guard.h>

#include "journal.h"
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[128], state[160], data[160];

static void put(const char *path, const char *s)
{
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	if (f) {
		fputs(s, f);
		fclose(f);
	}
}

static int has(const char *path, const char *s)
{
	char buf[256] = "";
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = 0;
	fclose(f);
	return !strcmp(buf, s);
}

static int jfd;
static int64_t now_t = 1000;

static void jline(const char *op, int pid, const char *path, const char *to,
                  const char *vault, int with_stat)
{
	json_t *o = json_object();
	json_object_set_new(o, "t", json_integer(now_t++));
	json_object_set_new(o, "op", json_string(op));
	json_object_set_new(o, "pid", json_integer(pid));
	json_object_set_new(o, "sid", json_integer(pid));
	gj_set_path(o, "path", path);
	gj_set_path(o, "to", to);
	if (with_stat) {
		struct stat st;
		const char *p = to && !strcmp(op, "rename") ? to : path;
		if (stat(p, &st) == 0) {
			json_object_set_new(o, "ino", json_integer((json_int_t)st.st_ino));
			json_object_set_new(o, "size", json_integer(st.st_size));
			json_object_set_new(o, "mode", json_integer(st.st_mode));
			json_object_set_new(o, "uid", json_integer(st.st_uid));
			json_object_set_new(o, "gid", json_integer(st.st_gid));
			json_object_set_new(o, "mtime", json_integer(0));
		}
	}
	gj_set_path(o, "vault", vault);
	CHECK(gj_write_line(jfd, o) == 0);
	json_decref(o);
}

static uint64_t ino_of(const char *p)
{
	struct stat st;
	return stat(p, &st) ? 0 : st.st_ino;
}

static void jdelete(int pid, const char *path, uint64_t ino)
{
	json_t *o = json_object();
	json_object_set_new(o, "t", json_integer(now_t++));
	json_object_set_new(o, "op", json_string("delete"));
	json_object_set_new(o, "pid", json_integer(pid));
	json_object_set_new(o, "sid", json_integer(pid));
	json_object_set_new(o, "path", json_string(path));
	json_object_set_new(o, "ino", json_integer((json_int_t)ino));
	CHECK(gj_write_line(jfd, o) == 0);
	json_decref(o);
}

/* A copy or range entry written by hand (ranged copies of large files). */
static void jcopy(int pid, const char *path, uint64_t ino, uint64_t size,
                  const char *vault, int64_t off, int ranged, uint64_t at, uint64_t len)
{
	json_t *o = json_object();
	json_object_set_new(o, "t", json_integer(now_t++));
	json_object_set_new(o, "op", json_string(len ? "range" : "copy"));
	json_object_set_new(o, "pid", json_integer(pid));
	json_object_set_new(o, "sid", json_integer(pid));
	json_object_set_new(o, "path", json_string(path));
	json_object_set_new(o, "ino", json_integer((json_int_t)ino));
	json_object_set_new(o, "vault", json_string(vault));
	if (len) {
		json_object_set_new(o, "at", json_integer((json_int_t)at));
		json_object_set_new(o, "len", json_integer((json_int_t)len));
	} else {
		json_object_set_new(o, "size", json_integer((json_int_t)size));
		json_object_set_new(o, "mode", json_integer(0100644));
		if (off >= 0)
			json_object_set_new(o, "off", json_integer(off));
		if (ranged)
			json_object_set_new(o, "ranged", json_true());
	}
	CHECK(gj_write_line(jfd, o) == 0);
	json_decref(o);
}

/* Write n bytes of c at offset at of path (created if need be). */
static void fill(const char *path, int c, size_t n, off_t at)
{
	char buf[4096];
	memset(buf, c, sizeof buf);
	int fd = open(path, O_WRONLY | O_CREAT, 0644);
	CHECK(fd >= 0);
	for (size_t d = 0; fd >= 0 && d < n;) {
		size_t k = n - d < sizeof buf ? n - d : sizeof buf;
		CHECK(pwrite(fd, buf, k, at + (off_t)d) == (ssize_t)k);
		d += k;
	}
	if (fd >= 0)
		close(fd);
}

/* Does path hold exactly the pages of pat (one letter per 4 KiB page)? */
static int pages_are(const char *path, const char *pat)
{
	struct stat st;
	if (stat(path, &st) || (size_t)st.st_size != strlen(pat) * 4096)
		return 0;
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	int ok = 1;
	for (size_t i = 0; ok && pat[i]; i++)
		for (int k = 0; ok && k < 4096; k++)
			ok = fgetc(f) == pat[i];
	fclose(f);
	return ok;
}

static void copy_file(const char *from, const char *to)
{
	char buf[4096];
	FILE *a = fopen(from, "r"), *b = fopen(to, "w");
	CHECK(a && b);
	if (!a || !b)
		return;
	size_t n = fread(buf, 1, sizeof buf, a);
	fwrite(buf, 1, n, b);
	fclose(a);
	fclose(b);
}

static void test_policy(void)
{
	struct bw_guard_policy p;
	bw_guard_policy_defaults(&p);
	static const char ok[] =
		"# comment\nprotect /srv/data\nprotect /home  # trailing\n"
		"mode monitor\nvault-budget 10G\ncopy-max 512M\nexpiry 2d\n"
		"window 90s\nfreeze-score 2.5\nkill-score 3\ncanaries no\nstrict-reads yes\n"
		"trust /usr/bin/restic sha256:"
		"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
		"trust /usr/bin/borg\n";
	CHECK_EQ_INT(bw_guard_policy_parse(&p, "t", ok, strlen(ok)), 0);
	CHECK_EQ_INT(p.nprotect, 2);
	CHECK(!strcmp(p.protect[1], "/home"));
	CHECK_EQ_INT(p.mode, BW_GUARD_MONITOR);
	CHECK_EQ_INT(p.strict_reads, 1);
	CHECK_EQ_INT(p.use_syslog, 1);
	CHECK(p.vault_budget == 10ULL << 30);
	CHECK(p.copy_max == 512ULL << 20);
	CHECK(p.expiry_ns == 2LL * 86400 * 1000000000LL);
	CHECK(p.window_ns == 90LL * 1000000000LL);
	CHECK(p.freeze_score == 2.5 && p.kill_score == 3.0);
	CHECK_EQ_INT(p.canaries, 0);
	CHECK_EQ_INT(p.ntrust, 2);
	CHECK(!p.trust[0].any_hash && p.trust[0].sha256[0] == 0x9f);
	CHECK(p.trust[1].any_hash);

	static const char *bad[] = {
		"protect relative/path\n", "mode fast\n", "vault-budget lots\n",
		"freeze-score 0.1\n", "trust /x sha256:abc\n", "nonsense 1\n",
		"protect\n", "expiry 5 days\n", "canaries maybe\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		bw_guard_policy_defaults(&p);
		bw_err_clear();
		int r = bw_guard_policy_parse(&p, "bad.conf", bad[i], strlen(bad[i]));
		CHECK(r != 0);
		/* the message names the file and line */
		CHECK(strstr(bw_err_msg(), "bad.conf:1") != NULL);
	}
	/* a NUL byte in the middle of a line */
	bw_guard_policy_defaults(&p);
	CHECK(bw_guard_policy_parse(&p, "n", "mode enforce\0x\n", 15) != 0);
}

int main(void)
{
	test_policy();

	snprintf(root, sizeof root, "/tmp/bw-test-rollback-XXXXXX");
	CHECK(mkdtemp(root) != NULL);
	snprintf(state, sizeof state, "%s/state", root);
	snprintf(data, sizeof data, "%s/data", root);
	mkdir(state, 0700);
	mkdir(data, 0755);
	char copies[200], p[8][256], j[256];
	snprintf(copies, sizeof copies, "%s/copies", state);
	mkdir(copies, 0700);
	snprintf(j, sizeof j, "%s/journal.jsonl", state);
	jfd = open(j, O_WRONLY | O_CREAT | O_APPEND, 0600);
	CHECK(jfd >= 0);
	const char *names[8] = {"a.txt", "b.txt", "c.txt", "d.txt", "keep.txt",
	                        "other.txt", "a.txt.locked", "HOW_TO_RESTORE.txt"};
	for (int i = 0; i < 8; i++)
		snprintf(p[i], sizeof p[i], "%s/%s", data, names[i]);
	put(p[0], "alpha");
	put(p[1], "bravo");
	put(p[2], "charlie");
	put(p[3], "delta");
	put(p[4], "untouched");
	put(p[5], "other");
	for (int i = 0; i < 6; i++)
		jline("seen", 0, p[i], NULL, NULL, 1);

	const int A = 4242; /* the attacker */
	/* a.txt: copied, encrypted in place, renamed to a.txt.locked */
	char ca[300];
	snprintf(ca, sizeof ca, "%s/1010-%llu", copies, (unsigned long long)ino_of(p[0]));
	copy_file(p[0], ca);
	jline("copy", A, p[0], NULL, ca, 1);
	put(p[0], "\x8f\x13 encrypted");
	CHECK(rename(p[0], p[6]) == 0);
	jline("rename", A, p[0], p[6], NULL, 1);
	/* b.txt: renamed only */
	char bl[300];
	snprintf(bl, sizeof bl, "%s/b.txt.locked", data);
	CHECK(rename(p[1], bl) == 0);
	jline("rename", A, p[1], bl, NULL, 1);
	/* c.txt: deleted, its content copied from the held descriptor */
	char cc[300];
	uint64_t cino = ino_of(p[2]);
	snprintf(cc, sizeof cc, "%s/1020-%llu", copies, (unsigned long long)cino);
	copy_file(p[2], cc);
	jline("copy", A, p[2], NULL, cc, 1);
	unlink(p[2]);
	jdelete(A, p[2], cino);
	/* d.txt: a new file renamed over it */
	char dtmp[300], dc[300];
	snprintf(dtmp, sizeof dtmp, "%s/.tmp1", data);
	put(dtmp, "\x01\x02 cipher");
	jline("create", A, dtmp, NULL, NULL, 1);
	snprintf(dc, sizeof dc, "%s/1030-%llu", copies, (unsigned long long)ino_of(p[3]));
	copy_file(p[3], dc);
	jline("copy", A, p[3], NULL, dc, 1);
	CHECK(rename(dtmp, p[3]) == 0);
	jline("rename", A, dtmp, p[3], NULL, 1);
	/* the note */
	put(p[7], "pay us");
	jline("create", A, p[7], NULL, NULL, 1);
	/* another process changes other.txt: not the attacker's */
	put(p[5], "other, edited");
	/* a torn last line, as a killed guard may leave */
	CHECK(write(jfd, "{\"t\":99999,\"op\":\"cre", 20) == 20);
	close(jfd);

	/* dry run changes nothing */
	struct bw_guard_rollback_opts o = {0};
	int pids[1] = {A};
	o.pids = pids;
	o.npids = 1;
	o.dry_run = 1;
	struct bw_guard_rollback_stats st;
	CHECK_EQ_INT(bw_guard_rollback(state, &o, &st), 0);
	CHECK(st.restored == 4);
	CHECK(access(p[0], F_OK) != 0);
	CHECK(has(p[7], "pay us"));

	o.dry_run = 0;
	CHECK_EQ_INT(bw_guard_rollback(state, &o, &st), 0);
	CHECK(has(p[0], "alpha"));
	CHECK(has(p[1], "bravo"));
	CHECK(has(p[2], "charlie"));
	CHECK(has(p[3], "delta"));
	CHECK(has(p[4], "untouched"));
	CHECK(has(p[5], "other, edited")); /* not the attacker's: kept */
	CHECK(access(p[6], F_OK) != 0);    /* a.txt.locked removed */
	CHECK(access(bl, F_OK) != 0);      /* b.txt.locked renamed back */
	CHECK(access(p[7], F_OK) != 0);    /* the note removed */
	CHECK_EQ_INT(st.failed, 0);

	/* the rollback journaled what it did: a second attack on a restored
	 * file is undone from the journal alone */
	jfd = open(j, O_WRONLY | O_APPEND);
	now_t = 5000;
	char ca2[300];
	snprintf(ca2, sizeof ca2, "%s/5000-%llu", copies, (unsigned long long)ino_of(p[0]));
	copy_file(p[0], ca2);
	jline("copy", A + 1, p[0], NULL, ca2, 1);
	put(p[0], "encrypted again");
	close(jfd);
	pids[0] = A + 1;
	o.since_ns = 4000;
	CHECK_EQ_INT(bw_guard_rollback(state, &o, &st), 0);
	CHECK(has(p[0], "alpha"));

	/* a copy packed into a segment: bytes at an offset */
	char seg[300], ep[300];
	snprintf(seg, sizeof seg, "%s/6000.seg", copies);
	snprintf(ep, sizeof ep, "%s/e.txt", data);
	put(seg, "0123echo-packed-content9999");
	put(ep, "echo-packed-content");
	jfd = open(j, O_WRONLY | O_APPEND);
	now_t = 6000;
	jline("seen", 0, ep, NULL, NULL, 1);
	{
		json_t *jo = json_object();
		json_object_set_new(jo, "t", json_integer(now_t++));
		json_object_set_new(jo, "op", json_string("copy"));
		json_object_set_new(jo, "pid", json_integer(A + 2));
		json_object_set_new(jo, "path", json_string(ep));
		json_object_set_new(jo, "ino", json_integer((json_int_t)ino_of(ep)));
		json_object_set_new(jo, "size", json_integer(19));
		json_object_set_new(jo, "mode", json_integer(0100644));
		json_object_set_new(jo, "vault", json_string(seg));
		json_object_set_new(jo, "off", json_integer(4));
		CHECK(gj_write_line(jfd, jo) == 0);
		json_decref(jo);
	}
	put(ep, "encrypted, and longer than before");
	close(jfd);
	pids[0] = A + 2;
	o.since_ns = 5500;
	CHECK_EQ_INT(bw_guard_rollback(state, &o, &st), 0);
	CHECK(has(ep, "echo-packed-content"));

	/* ranged copies: only the pages written, laid over the file as it is
	 * now; the size it had is put back (the writer also appended) */
	char rp[300], rv[300], sp[300], sv[300], snap[300];
	snprintf(rp, sizeof rp, "%s/r.bin", data);
	snprintf(rv, sizeof rv, "%s/7000-r", copies);
	fill(rp, 'a', 4096, 0);
	fill(rp, 'b', 4096, 4096);
	fill(rp, 'c', 4096, 8192);
	uint64_t rino = ino_of(rp);
	fill(rv, 'b', 4096, 4096);  /* page 1 before its first write */
	fill(rv, 'c', 4096, 8192);  /* page 2, later */
	/* a second file: a range, then a whole snapshot, then deleted */
	snprintf(sp, sizeof sp, "%s/s.bin", data);
	snprintf(sv, sizeof sv, "%s/7001-s", copies);
	snprintf(snap, sizeof snap, "%s/7002-s", copies);
	fill(sp, 'a', 8192, 0);
	uint64_t sino = ino_of(sp);
	fill(sv, 'a', 4096, 0);     /* page 0 before its first write */
	fill(snap, 'Q', 4096, 0);   /* the snapshot: page 0 already written */
	fill(snap, 'a', 4096, 4096);
	jfd = open(j, O_WRONLY | O_APPEND);
	now_t = 7000;
	jline("seen", 0, rp, NULL, NULL, 1);
	jline("seen", 0, sp, NULL, NULL, 1);
	jcopy(A + 3, rp, rino, 12288, rv, -1, 1, 0, 0);
	jcopy(A + 3, rp, rino, 0, rv, -1, 0, 4096, 4096);
	jcopy(A + 3, sp, sino, 8192, sv, -1, 1, 0, 0);
	jcopy(A + 3, sp, sino, 0, sv, -1, 0, 0, 4096);
	jcopy(A + 3, rp, rino, 0, rv, -1, 0, 8192, 4096);
	jcopy(A + 3, sp, sino, 8192, snap, -1, 0, 0, 0);
	/* written after the snapshot: undone by the snapshot itself; a range
	 * logged after it must not be laid over it */
	jcopy(A + 3, sp, sino, 0, rv, -1, 0, 4096, 4096);
	jdelete(A + 3, sp, sino);
	close(jfd);
	fill(rp, 'X', 4096, 4096);
	fill(rp, 'Y', 4096, 8192);
	fill(rp, 'Z', 100, 12288);
	CHECK(unlink(sp) == 0);
	pids[0] = A + 3;
	o.since_ns = 6500;
	CHECK_EQ_INT(bw_guard_rollback(state, &o, &st), 0);
	CHECK(pages_are(rp, "abc"));
	CHECK(pages_are(sp, "aa"));
	CHECK(st.failed == 0);

	/* a ranged copy whose file is gone with no later copy: said, not faked */
	char gp[300], gv[300];
	snprintf(gp, sizeof gp, "%s/g.bin", data);
	snprintf(gv, sizeof gv, "%s/7100-g", copies);
	fill(gp, 'a', 8192, 0);
	uint64_t gino = ino_of(gp);
	fill(gv, 'a', 4096, 0);
	jfd = open(j, O_WRONLY | O_APPEND);
	now_t = 7100;
	jline("seen", 0, gp, NULL, NULL, 1);
	jcopy(A + 4, gp, gino, 8192, gv, -1, 1, 0, 0);
	jcopy(A + 4, gp, gino, 0, gv, -1, 0, 0, 4096);
	jdelete(A + 4, gp, gino);
	close(jfd);
	CHECK(unlink(gp) == 0);
	pids[0] = A + 4;
	o.since_ns = 7050;
	bw_err_clear();
	CHECK_EQ_INT(bw_guard_rollback(state, &o, &st), BW_EDAMAGED);
	CHECK(st.failed == 1);
	CHECK(access(gp, F_OK) != 0);

	/* no journal: a clear error */
	bw_err_clear();
	CHECK(bw_guard_rollback("/nonexistent-bw-state", &o, &st) == BW_ENOENT);
	CHECK(strstr(bw_err_msg(), "no journal") != NULL);

	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	if (!test_failures)
		CHECK(system(cmd) == 0);
	else
		fprintf(stderr, "left %s for a look\n", root);
	TEST_DONE();
}
