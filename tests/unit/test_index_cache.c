/* The index's local cache: a written cache maps back with every entry,
 * a delta merges in, forgotten packs disappear, and a damaged or foreign
 * cache is refused. */
#include "index.h"

#include <unistd.h>

#include "test.h"

static void make_id(struct bw_id *id, uint32_t n, uint8_t salt)
{
	memset(id->b, 0, sizeof id->b);
	for (int i = 0; i < 8; i++)
		id->b[i] = (uint8_t)((n * 2654435761u) >> (i * 4)) ^ salt;
	memcpy(id->b + 8, &n, 4);
	id->b[12] = salt;
}

static int add_entries(struct bw_index *x, uint32_t from, uint32_t to, uint8_t salt)
{
	for (uint32_t i = from; i < to; i++) {
		struct bw_id pid;
		uint32_t no;
		make_id(&pid, i / 100, 0xee);
		if (bw_index_add_pack(x, &pid, &no))
			return -1;
		struct bw_index_entry e;
		memset(&e, 0, sizeof e);
		make_id(&e.id, i, salt);
		e.pack = no;
		e.offset = i * 10;
		e.length = 100 + i % 7;
		e.raw_length = 1000 + i;
		e.type = i % 2;
		if (bw_index_insert(x, &e) < 0)
			return -1;
	}
	return 0;
}

static int check_entries(struct bw_index *x, uint32_t from, uint32_t to, uint8_t salt)
{
	int bad = 0;
	for (uint32_t i = from; i < to; i++) {
		struct bw_id id, pid;
		struct bw_index_entry e;
		make_id(&id, i, salt);
		make_id(&pid, i / 100, 0xee);
		if (bw_index_lookup(x, &id, &e) || e.offset != i * 10 ||
		    e.length != 100 + i % 7 || e.raw_length != 1000 + i ||
		    e.type != i % 2 ||
		    memcmp(bw_index_pack_id(x, e.pack)->b, pid.b, BW_ID_LEN))
			bad++;
	}
	return bad;
}

static int count_each(void *arg, const struct bw_index_entry *e)
{
	(void)e;
	(*(size_t *)arg)++;
	return 0;
}

int main(void)
{
	char path[] = "/tmp/bw-test-index-cache-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	close(fd);
	struct bw_id repo, other, cov[2], *got = NULL;
	size_t ngot = 0;
	make_id(&repo, 1, 1);
	make_id(&other, 2, 2);
	make_id(&cov[0], 10, 3);
	make_id(&cov[1], 11, 3);

	/* write 20000 entries in 200 packs and map them back */
	struct bw_index *a = bw_index_new();
	CHECK(add_entries(a, 0, 20000, 7) == 0);
	CHECK(bw_index_write_cache(a, path, &repo, cov, 1) == 0);
	struct bw_index *b = bw_index_new();
	CHECK(bw_index_attach(b, path, &repo, &got, &ngot) == 0);
	CHECK(ngot == 1 && !memcmp(got[0].b, cov[0].b, BW_ID_LEN));
	free(got);
	CHECK(bw_index_base_count(b) == 20000);
	CHECK(bw_index_count(b) == 20000);
	CHECK_EQ_INT(check_entries(b, 0, 20000, 7), 0);
	struct bw_id absent;
	struct bw_index_entry e;
	make_id(&absent, 5, 99);
	CHECK(bw_index_lookup(b, &absent, &e) == BW_ENOENT);
	/* present in the base: no claim, insert keeps the first copy */
	make_id(&e.id, 42, 7);
	CHECK(bw_index_claim(b, &e.id, 0) == 0);
	CHECK(bw_index_claim(b, &absent, 0) == 1);

	/* a delta in memory merges into a rewritten cache */
	CHECK(add_entries(b, 20000, 25000, 7) == 0);
	CHECK(bw_index_count(b) == 25000);
	CHECK_EQ_INT(check_entries(b, 0, 25000, 7), 0);
	CHECK(bw_index_write_cache(b, path, &repo, cov, 2) == 0);
	struct bw_index *c = bw_index_new();
	CHECK(bw_index_attach(c, path, &repo, &got, &ngot) == 0 && ngot == 2);
	free(got);
	CHECK(bw_index_count(c) == 25000);
	CHECK_EQ_INT(check_entries(c, 0, 25000, 7), 0);

	/* forgetting a pack hides its base entries everywhere */
	struct bw_id pid;
	uint32_t no;
	make_id(&pid, 3, 0xee); /* entries 300..399 */
	CHECK(bw_index_add_pack(c, &pid, &no) == 0);
	bw_index_forget_pack(c, no);
	CHECK(bw_index_count(c) == 24900);
	CHECK_EQ_INT(check_entries(c, 300, 400, 7), 100);
	CHECK_EQ_INT(check_entries(c, 0, 300, 7), 0);
	size_t cnt = 0;
	CHECK(bw_index_each(c, count_each, &cnt) == 0);
	CHECK(cnt == 24900);
	/* and a forgotten blob may be stored again */
	make_id(&e.id, 350, 7);
	CHECK(bw_index_claim(c, &e.id, 0) == 1);

	/* a foreign or damaged cache is refused */
	struct bw_index *d = bw_index_new();
	CHECK(bw_index_attach(d, path, &other, &got, &ngot) == BW_EFORMAT);
	CHECK(truncate(path, 1000) == 0);
	CHECK(bw_index_attach(d, path, &repo, &got, &ngot) == BW_EFORMAT);
	CHECK(truncate(path, 0) == 0);
	CHECK(bw_index_attach(d, path, &repo, &got, &ngot) == BW_EFORMAT);
	unlink(path);
	CHECK(bw_index_attach(d, path, &repo, &got, &ngot) == BW_ENOENT);
	CHECK(bw_index_count(d) == 0);

	bw_index_free(a);
	bw_index_free(b);
	bw_index_free(c);
	bw_index_free(d);
	TEST_DONE();
}
