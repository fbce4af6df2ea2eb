/*
 * bench/guard_rewrite.c - the cost of `bulwark guard` per small rewrite.
 *
 *   guard_rewrite prepare DIR NFILES SEED
 *       DIR/f/NNNNN: NFILES files of 4 KiB..64 KiB, DIR/big: one 64 MiB file.
 *       The bytes are words (prose entropy), so a rewrite never looks like
 *       encryption to the guard's analysis.
 *   guard_rewrite run DIR NFILES OPS ROUNDS
 *       (d) read:    open(O_RDONLY), read 4 KiB, close            per file
 *       (a) rewrite: open(O_WRONLY), pwrite 4 KiB, close           per file
 *                    (each open is a new write episode: the guard
 *                    copies the file before the first write)
 *       (b) big:     one open 64 MiB file, OPS pwrites of 4 KiB at
 *                    random aligned offsets (the first one, which pays
 *                    for the copy of the whole file, is timed apart)
 *       (c) trunc:   open(O_WRONLY|O_TRUNC), write 4 KiB, close    per file
 *       (d), (a) and (c) go over the files ROUNDS times.  Run (c) last: it
 *       leaves every file at 4 KiB, so `prepare` comes before each `run`.
 *       Prints one JSON line: microseconds per operation, and the first
 *       write into the big file in milliseconds.
 *
 * Built by bench/guard.sh with `cc -O2`; a benchmark, not a test.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BLK 4096
#define BIG_SIZE (64u << 20)
#define NBUFS 16

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	/* xorshift64*: deterministic, good enough for offsets and words */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static const char *const words[] = {
	"the", "of", "and", "report", "budget", "invoice", "customer", "contract",
	"meeting", "quarter", "sales", "revenue", "forecast", "payment", "order",
	"delivery", "schedule", "policy", "employee", "manager", "server", "backup",
	"network", "system", "data", "file", "record", "client", "service", "ticket",
	"release", "version", "update", "change", "approval", "summary", "analysis",
	"market", "product", "price", "margin", "growth", "plan", "risk", "audit",
};

/* Fill p with words and spaces (about 4.5 bits per byte, like prose). */
static void fill_text(char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		const char *w = words[rng() % (sizeof words / sizeof words[0])];
		size_t l = strlen(w);

		for (size_t k = 0; k < l && i < n; k++)
			p[i++] = w[k];
		if (i < n)
			p[i++] = (rng() % 12 == 0) ? '\n' : ' ';
	}
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int die(const char *what, const char *path)
{
	fprintf(stderr, "guard_rewrite: %s %s: %s\n", what, path, strerror(errno));
	exit(1);
}

static void file_path(char *out, size_t cap, const char *dir, long i)
{
	snprintf(out, cap, "%s/f/%05ld", dir, i);
}

static int write_full(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static size_t file_size(long i)
{
	/* 4 KiB .. 64 KiB in 4 KiB steps, fixed per index */
	return (size_t)(1 + (i * 7919) % 16) * BLK;
}

static int cmd_prepare(const char *dir, long nfiles, uint64_t seed)
{
	char path[4096];
	static char buf[1 << 20];
	int fd;

	rng_state ^= seed * 0x9e3779b97f4a7c15ull;
	snprintf(path, sizeof path, "%s/f", dir);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		die("mkdir", path);
	fill_text(buf, sizeof buf);
	for (long i = 0; i < nfiles; i++) {
		size_t sz = file_size(i), off = (size_t)(rng() % (sizeof buf - sz));

		file_path(path, sizeof path, dir, i);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0)
			die("open", path);
		if (write_full(fd, buf + off, sz) < 0)
			die("write", path);
		close(fd);
	}
	snprintf(path, sizeof path, "%s/big", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("open", path);
	for (size_t done = 0; done < BIG_SIZE; done += sizeof buf)
		if (write_full(fd, buf + (rng() % 64), sizeof buf - 64) < 0 ||
		    write_full(fd, buf, 64) < 0)
			die("write", path);
	close(fd);
	return 0;
}

static int cmd_run(const char *dir, long nfiles, long ops, long rounds)
{
	static char bufs[NBUFS][BLK];
	char path[4096], rbuf[BLK];
	double t0, t_read, t_rewrite, t_big1, t_big, t_trunc;
	int fd;

	for (int b = 0; b < NBUFS; b++)
		fill_text(bufs[b], BLK);

	/* (d) read-only */
	t0 = now_us();
	for (long r = 0; r < rounds; r++)
		for (long i = 0; i < nfiles; i++) {
			file_path(path, sizeof path, dir, i);
			fd = open(path, O_RDONLY);
			if (fd < 0)
				die("open", path);
			if (read(fd, rbuf, BLK) < 0)
				die("read", path);
			close(fd);
		}
	t_read = (now_us() - t0) / (double)(rounds * nfiles);

	/* (a) rewrite 4 KiB of an existing file, one episode per open */
	t0 = now_us();
	for (long r = 0; r < rounds; r++)
		for (long i = 0; i < nfiles; i++) {
			off_t off = (off_t)(rng() % (file_size(i) / BLK)) * BLK;

			file_path(path, sizeof path, dir, i);
			fd = open(path, O_WRONLY);
			if (fd < 0)
				die("open", path);
			if (pwrite(fd, bufs[(i + r) % NBUFS], BLK, off) != BLK)
				die("pwrite", path);
			close(fd);
		}
	t_rewrite = (now_us() - t0) / (double)(rounds * nfiles);

	/* (b) random 4 KiB pwrites into one open 64 MiB file */
	snprintf(path, sizeof path, "%s/big", dir);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		die("open", path);
	t0 = now_us();
	if (pwrite(fd, bufs[0], BLK, 0) != BLK)
		die("pwrite", path);
	t_big1 = now_us() - t0;
	t0 = now_us();
	for (long k = 0; k < ops; k++) {
		off_t off = (off_t)(rng() % (BIG_SIZE / BLK)) * BLK;

		if (pwrite(fd, bufs[k % NBUFS], BLK, off) != BLK)
			die("pwrite", path);
	}
	t_big = (now_us() - t0) / (double)ops;
	close(fd);

	/* (c) open(O_TRUNC) + write 4 KiB + close */
	t0 = now_us();
	for (long r = 0; r < rounds; r++)
		for (long i = 0; i < nfiles; i++) {
			file_path(path, sizeof path, dir, i);
			fd = open(path, O_WRONLY | O_TRUNC);
			if (fd < 0)
				die("open", path);
			if (write_full(fd, bufs[(i + r) % NBUFS], BLK) < 0)
				die("write", path);
			close(fd);
		}
	t_trunc = (now_us() - t0) / (double)(rounds * nfiles);

	printf("{\"read_us\":%.3f,\"rewrite_us\":%.3f,\"big_first_ms\":%.3f,"
	       "\"big_us\":%.3f,\"trunc_us\":%.3f,\"files\":%ld,\"ops\":%ld,\"rounds\":%ld}\n",
	       t_read, t_rewrite, t_big1 / 1000.0, t_big, t_trunc, nfiles, ops, rounds);
	return 0;
}

static long num(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == 0 || *end != 0 || v <= 0) {
		fprintf(stderr, "guard_rewrite: not a positive number: %s\n", s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "prepare"))
		return cmd_prepare(argv[2], num(argv[3]), (uint64_t)num(argv[4]));
	if (argc == 6 && !strcmp(argv[1], "run"))
		return cmd_run(argv[2], num(argv[3]), num(argv[4]), num(argv[5]));
	fprintf(stderr, "usage: guard_rewrite prepare DIR NFILES SEED\n"
			"       guard_rewrite run DIR NFILES OPS ROUNDS\n");
	return 2;
}
