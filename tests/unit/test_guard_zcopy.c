/* Compressed vault copies (src/guard/zcopy.c): what goes in comes back
 * byte for byte, whole and at any offset, holes and blocks of zeros stay
 * holes in a restore, small copies packed into a segment come back from
 * their offset, and a damaged copy is an error, never wrong bytes. */
#include "zcopy.h"

#include <bulwark/core.h>

#include "test.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static int mk(const char *name)
{
	char p[128];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	return open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
}

/* size bytes: text-like, random and zero stretches, and a hole */
static uint8_t *make_original(int fd, uint64_t size, uint64_t hole_at, uint64_t hole_len)
{
	uint8_t *b = calloc(1, size ? size : 1);
	uint32_t x = 12345;
	for (uint64_t i = 0; i < size; i++) {
		uint64_t zone = i / 50000 % 4;
		x = x * 1103515245 + 12345;
		b[i] = zone == 0 ? (uint8_t)('a' + i % 26) : zone == 1 ? (uint8_t)(x >> 16)
		     : zone == 2 ? 0 : (uint8_t)(i * 7);
	}
	if (hole_len)
		memset(b + hole_at, 0, hole_len);
	CHECK(ftruncate(fd, (off_t)size) == 0);
	CHECK(bw_pwrite_full(fd, b, hole_at, 0) == 0);
	if (size > hole_at + hole_len)
		CHECK(bw_pwrite_full(fd, b + hole_at + hole_len, size - hole_at - hole_len,
		                     hole_at + hole_len) == 0);
	return b;
}

static void round_trip(uint64_t size, uint64_t hole_at, uint64_t hole_len)
{
	struct gz_writer w = {0};
	int in = mk("orig"), out = mk("copy"), back = mk("back");
	uint8_t *b = make_original(in, size, hole_at, hole_len);
	uint64_t stored = 0;
	CHECK_EQ_INT(gz_write(&w, in, out, size, &stored), 0);
	struct stat st;
	CHECK(fstat(out, &st) == 0 && (uint64_t)st.st_size == stored);
	/* reads at odd offsets and across chunk boundaries */
	struct gz_reader z;
	CHECK_EQ_INT(gz_open(&z, out), 0);
	CHECK_EQ_INT(z.size, size);
	uint8_t *got = malloc(300000);
	uint64_t offs[] = {0, 1, GZ_CHUNK - 7, GZ_CHUNK, 3 * GZ_CHUNK + 5, size / 2,
	                   size ? size - 1 : 0, size, size + 10};
	for (size_t i = 0; i < sizeof offs / sizeof *offs; i++) {
		size_t n = 0;
		CHECK_EQ_INT(gz_read(&z, offs[i], got, 300000, &n), 0);
		uint64_t want = offs[i] >= size ? 0 : size - offs[i] < 300000 ? size - offs[i] : 300000;
		CHECK_EQ_INT(n, want);
		CHECK(n == 0 || memcmp(got, b + offs[i], n) == 0);
	}
	gz_close(&z);
	uint64_t rs = 0;
	CHECK_EQ_INT(gz_restore(out, back, &rs), 0);
	CHECK_EQ_INT(rs, size);
	uint8_t *r = malloc(size ? size : 1);
	CHECK(fstat(back, &st) == 0 && (uint64_t)st.st_size == size);
	CHECK(bw_pread_full(back, r, size, 0) == 0 && memcmp(r, b, size) == 0);
	/* zeros are not written back: the restore is sparse */
	if (hole_len >= (1u << 20))
		CHECK((uint64_t)st.st_blocks * 512 + hole_len / 2 < size);
	free(r);
	free(got);
	free(b);
	gz_writer_release(&w);
	close(in);
	close(out);
	close(back);
}

/* Every single-byte change of the index or of a frame header is an error
 * or the right bytes; never a crash and never a wrong restore. */
static void damaged(void)
{
	struct gz_writer w = {0};
	int in = mk("orig"), out = mk("copy");
	uint64_t size = 5 * GZ_CHUNK + 1234;
	uint8_t *b = make_original(in, size, 0, 0);
	uint64_t stored = 0;
	CHECK_EQ_INT(gz_write(&w, in, out, size, &stored), 0);
	uint8_t *c = malloc(stored);
	CHECK(bw_pread_full(out, c, stored, 0) == 0);
	uint8_t *buf = malloc(size);
	int errors = 0;
	for (uint64_t at = 0; at < stored; at += (at < 64 || at + 200 > stored) ? 1 : 97) {
		int fd = mk("bad");
		uint8_t *d = malloc(stored);
		memcpy(d, c, stored);
		d[at] ^= 0x5a;
		CHECK(bw_pwrite_full(fd, d, stored, 0) == 0);
		struct gz_reader z;
		if (gz_open(&z, fd) == 0) {
			size_t n = 0;
			if (gz_read(&z, 0, buf, size, &n) == 0)
				CHECK(n == size && memcmp(buf, b, size) == 0);
			else
				errors++;
			gz_close(&z);
		} else {
			errors++;
		}
		free(d);
		close(fd);
	}
	CHECK(errors > 0);
	/* cut short anywhere */
	for (uint64_t len = 0; len < stored; len += stored / 13 + 1) {
		int fd = mk("short");
		CHECK(bw_pwrite_full(fd, c, len, 0) == 0);
		struct gz_reader z;
		CHECK(gz_open(&z, fd) != 0);
		close(fd);
	}
	free(buf);
	free(c);
	free(b);
	gz_writer_release(&w);
	close(in);
	close(out);
}

/* Small copies packed into a segment: one frame each, found by offset. */
static void packed(void)
{
	struct gz_writer w = {0};
	int seg = mk("seg");
	static uint8_t a[70000], b[5000], got[70000];
	for (size_t i = 0; i < sizeof a; i++)
		a[i] = (uint8_t)("lorem ipsum dolor "[i % 18] + i / 9000);
	for (size_t i = 0; i < sizeof b; i++)
		b[i] = (uint8_t)(i * 131 + 7);
	const uint8_t *p;
	size_t za = 0, zb = 0;
	CHECK_EQ_INT(gz_pack(&w, a, sizeof a, &p, &za), 0);
	CHECK(za < sizeof a / 4);
	CHECK(bw_pwrite_full(seg, b, sizeof b, 0) == 0);            /* raw */
	CHECK(bw_pwrite_full(seg, p, za, sizeof b) == 0);           /* compressed */
	CHECK_EQ_INT(gz_pack(&w, b, sizeof b, &p, &zb), 0);
	CHECK(bw_pwrite_full(seg, p, zb, sizeof b + za) == 0);      /* at the end */
	CHECK_EQ_INT(gz_unpack(seg, 0, sizeof b, 0, got), 0);
	CHECK(memcmp(got, b, sizeof b) == 0);
	CHECK_EQ_INT(gz_unpack(seg, (int64_t)sizeof b, sizeof a, 1, got), 0);
	CHECK(memcmp(got, a, sizeof a) == 0);
	CHECK_EQ_INT(gz_unpack(seg, (int64_t)(sizeof b + za), sizeof b, 1, got), 0);
	CHECK(memcmp(got, b, sizeof b) == 0);
	/* a wrong length, a wrong offset, a flipped byte: errors */
	CHECK(gz_unpack(seg, (int64_t)sizeof b, sizeof a - 1, 1, got) != 0);
	CHECK(gz_unpack(seg, (int64_t)sizeof b + 1, sizeof a, 1, got) != 0);
	CHECK(gz_unpack(seg, (int64_t)(sizeof b + za + zb), sizeof b, 1, got) != 0);
	uint8_t x;
	CHECK(bw_pread_full(seg, &x, 1, sizeof b + za / 2) == 0);
	x ^= 0x21;
	CHECK(bw_pwrite_full(seg, &x, 1, sizeof b + za / 2) == 0);
	CHECK(gz_unpack(seg, (int64_t)sizeof b, sizeof a, 1, got) != 0);
	gz_writer_release(&w);
	close(seg);
}

int main(void)
{
	snprintf(dir, sizeof dir, "/tmp/bw-zcopy-XXXXXX");
	if (!mkdtemp(dir))
		return 2;
	round_trip(0, 0, 0);
	round_trip(1, 0, 0);
	round_trip(GZ_CHUNK, 0, 0);
	round_trip(3 * GZ_CHUNK + 777, 0, 0);
	round_trip(9u << 20, 2u << 20, 3u << 20); /* a hole over whole batches */
	damaged();
	packed();
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 2;
	TEST_DONE();
}
