/* Tree encoding: round trips of every node type and odd names, and
 * rejection of malformed input. */
#include <bulwark/repo.h>

#include "test.h"

static int bytes_eq(const void *a, size_t al, const void *b, size_t bl)
{
	return al == bl && (al == 0 || memcmp(a, b, al) == 0);
}

static int node_eq(const struct bw_node *a, const struct bw_node *b)
{
	if (!bytes_eq(a->name, a->name_len, b->name, b->name_len) ||
	    a->type != b->type || a->mode != b->mode || a->uid != b->uid ||
	    a->gid != b->gid ||
	    !bytes_eq(a->user, a->user_len, b->user, b->user_len) ||
	    !bytes_eq(a->group, a->group_len, b->group, b->group_len) ||
	    a->size != b->size || a->mtime_ns != b->mtime_ns ||
	    a->atime_ns != b->atime_ns || a->ctime_ns != b->ctime_ns ||
	    a->dev != b->dev || a->ino != b->ino || a->nlink != b->nlink ||
	    a->rdev != b->rdev ||
	    !bytes_eq(a->target, a->target_len, b->target, b->target_len) ||
	    a->nxattrs != b->nxattrs)
		return 0;
	for (size_t i = 0; i < a->nxattrs; i++) {
		const struct bw_xattr *x = &a->xattrs[i], *y = &b->xattrs[i];
		if (!bytes_eq(x->name, x->name_len, y->name, y->name_len) ||
		    !bytes_eq(x->value, x->value_len, y->value, y->value_len))
			return 0;
	}
	if (a->type == BW_NODE_FILE &&
	    !bytes_eq(a->content, a->ncontent * BW_ID_LEN, b->content,
	              b->ncontent * BW_ID_LEN))
		return 0;
	if (a->type == BW_NODE_DIR && memcmp(&a->subtree, &b->subtree, BW_ID_LEN))
		return 0;
	return 1;
}

static void set_name(struct bw_node *n, const char *s)
{
	n->name = s;
	n->name_len = strlen(s);
}

/* Encode, decode and compare; returns the number of decoded nodes. */
static void round_trip(const struct bw_node *nodes, size_t n)
{
	struct bw_buf b;
	struct bw_tree t;
	bw_buf_init(&b, 0);
	CHECK_EQ_INT(bw_tree_encode(nodes, n, &b), 0);
	size_t len = b.len;
	uint8_t *copy = malloc(len ? len : 1);
	if (len)
		memcpy(copy, b.data, len);
	CHECK_EQ_INT(bw_tree_decode(&b, &t), 0);
	CHECK(b.data == NULL && b.len == 0); /* ownership moved */
	CHECK_EQ_INT(t.n, n);
	for (size_t i = 0; i < n && i < t.n; i++)
		CHECK(node_eq(&nodes[i], &t.nodes[i]));
	/* re-encoding gives the same bytes: the format is canonical */
	struct bw_buf b2;
	bw_buf_init(&b2, 0);
	CHECK_EQ_INT(bw_tree_encode(t.nodes, t.n, &b2), 0);
	CHECK(bytes_eq(b2.data, b2.len, copy, len));
	bw_buf_release(&b2);
	free(copy);
	bw_tree_release(&t);
	CHECK(t.nodes == NULL && t.n == 0 && t.raw.data == NULL);
}

/* Decoding must fail with code. */
static void expect_decode(const uint8_t *p, size_t n, int code)
{
	struct bw_buf b;
	struct bw_tree t;
	bw_buf_init(&b, 0);
	if (bw_buf_append(&b, p, n))
		abort();
	bw_err_clear();
	int r = bw_tree_decode(&b, &t);
	CHECK_EQ_INT(r, code);
	CHECK(b.data == NULL); /* consumed even on failure */
	CHECK(t.nodes == NULL && t.n == 0 && t.raw.data == NULL);
	if (r == BW_EFORMAT || r == BW_EVERSION)
		CHECK(bw_err_msg()[0] != 0);
	bw_tree_release(&t);
}

static struct bw_id id_of(uint8_t x)
{
	struct bw_id id;
	for (int i = 0; i < BW_ID_LEN; i++)
		id.b[i] = (uint8_t)(x + i);
	return id;
}

static void test_all_types(void)
{
	static struct bw_id content[3];
	static const uint8_t big_value[1000] = {1, 2, 3};
	static struct bw_xattr xattrs[3] = {
		{"user.comment", 12, (const uint8_t *)"hello", 5},
		{"system.posix_acl_access", 23, big_value, sizeof big_value},
		{"user.empty", 10, NULL, 0},
	};
	struct bw_node n[8];
	memset(n, 0, sizeof n);
	for (int i = 0; i < 3; i++)
		content[i] = id_of((uint8_t)(10 * i));

	/* sorted by bytes: "blk" < "chr" < "dir" < "fifo" < "file" <
	 * "file2" < "link" < "sock" */
	set_name(&n[0], "blk");
	n[0].type = BW_NODE_BLK;
	n[0].rdev = 0x0801;
	set_name(&n[1], "chr");
	n[1].type = BW_NODE_CHR;
	n[1].rdev = UINT64_MAX;
	set_name(&n[2], "dir");
	n[2].type = BW_NODE_DIR;
	n[2].mode = 01777;
	n[2].subtree = id_of(0xa0);
	set_name(&n[3], "fifo");
	n[3].type = BW_NODE_FIFO;
	set_name(&n[4], "file");
	n[4].type = BW_NODE_FILE;
	n[4].mode = 06755;
	n[4].uid = UINT32_MAX;
	n[4].gid = 1000;
	n[4].user = "alice";
	n[4].user_len = 5;
	n[4].group = "staff";
	n[4].group_len = 5;
	n[4].size = 3u << 20;
	n[4].mtime_ns = 1700000000123456789LL;
	n[4].atime_ns = -1;
	n[4].ctime_ns = INT64_MIN;
	n[4].dev = 66306;
	n[4].ino = 1234567;
	n[4].nlink = 2;
	n[4].content = content;
	n[4].ncontent = 3;
	n[4].xattrs = xattrs;
	n[4].nxattrs = 3;
	set_name(&n[5], "file2"); /* empty file */
	n[5].type = BW_NODE_FILE;
	n[5].mtime_ns = INT64_MAX;
	set_name(&n[6], "link");
	n[6].type = BW_NODE_SYMLINK;
	n[6].mode = 0777;
	n[6].target = "../some/where else";
	n[6].target_len = strlen(n[6].target);
	set_name(&n[7], "sock");
	n[7].type = BW_NODE_SOCK;
	round_trip(n, 8);

	/* find */
	struct bw_buf b;
	struct bw_tree t;
	bw_buf_init(&b, 0);
	CHECK_EQ_INT(bw_tree_encode(n, 8, &b), 0);
	CHECK_EQ_INT(bw_tree_decode(&b, &t), 0);
	for (int i = 0; i < 8; i++) {
		const struct bw_node *f = bw_tree_find(&t, n[i].name, n[i].name_len);
		CHECK(f == &t.nodes[i]);
	}
	CHECK(bw_tree_find(&t, "file", 3) == NULL);
	CHECK(bw_tree_find(&t, "a", 1) == NULL);
	CHECK(bw_tree_find(&t, "zzz", 3) == NULL);
	CHECK(bw_tree_find(&t, "files", 5) == NULL);
	const struct bw_node *f = bw_tree_find(&t, "file", 4);
	CHECK(f && f->ncontent == 3 && f->nxattrs == 3 &&
	      memcmp(&f->content[2], &content[2], BW_ID_LEN) == 0 &&
	      f->xattrs[1].value_len == sizeof big_value);
	bw_tree_release(&t);
	bw_tree_release(&t); /* twice is fine */
}

static void test_empty_and_odd_names(void)
{
	round_trip(NULL, 0);

	struct bw_tree z;
	memset(&z, 0, sizeof z);
	bw_tree_release(&z); /* safe on zeroed */
	CHECK(bw_tree_find(&z, "a", 1) == NULL);

	static char longname[BW_NAME_MAX];
	memset(longname, 'x', sizeof longname);
	static const char nonutf8[] = "\xff\xfe\x80 caf\xe9";
	struct bw_node n[6];
	memset(n, 0, sizeof n);
	for (int i = 0; i < 6; i++)
		n[i].type = BW_NODE_FILE;
	set_name(&n[0], " "); /* 0x20 */
	set_name(&n[1], "...");
	set_name(&n[2], "..a");
	set_name(&n[3], "\x01");
	n[3].name_len = 1;
	n[4].name = longname;
	n[4].name_len = sizeof longname;
	n[5].name = nonutf8;
	n[5].name_len = sizeof nonutf8 - 1;
	/* sort order: 0x01 < ' ' < "..." < "..a" < 'x'... < 0xff */
	struct bw_node s[6] = {n[3], n[0], n[1], n[2], n[4], n[5]};
	round_trip(s, 6);
}

static void test_cmp(void)
{
	CHECK(bw_node_cmp_name("a", 1, "b", 1) < 0);
	CHECK(bw_node_cmp_name("b", 1, "a", 1) > 0);
	CHECK(bw_node_cmp_name("a", 1, "ab", 2) < 0);
	CHECK(bw_node_cmp_name("ab", 2, "a", 1) > 0);
	CHECK(bw_node_cmp_name("ab", 2, "ab", 2) == 0);
	CHECK(bw_node_cmp_name("\xff", 1, "a", 1) > 0); /* unsigned bytes */
	CHECK(bw_node_cmp_name("", 0, "", 0) == 0);
}

static void test_encode_rejects(void)
{
	struct bw_node n[2];
	struct bw_buf b;
	bw_buf_init(&b, 0);
	memset(n, 0, sizeof n);
	n[0].type = n[1].type = BW_NODE_FIFO;

	set_name(&n[0], "b");
	set_name(&n[1], "a");
	CHECK_EQ_INT(bw_tree_encode(n, 2, &b), BW_EINVAL); /* unsorted */
	set_name(&n[1], "b");
	CHECK_EQ_INT(bw_tree_encode(n, 2, &b), BW_EINVAL); /* duplicate */
	CHECK_EQ_INT(b.len, 0);

	static const char *bad[] = {"a/b", "/", ".", ".."};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		set_name(&n[0], bad[i]);
		CHECK_EQ_INT(bw_tree_encode(n, 1, &b), BW_EINVAL);
	}
	n[0].name = "a\0b";
	n[0].name_len = 3;
	CHECK_EQ_INT(bw_tree_encode(n, 1, &b), BW_EINVAL);
	n[0].name_len = 0;
	CHECK_EQ_INT(bw_tree_encode(n, 1, &b), BW_EINVAL);
	static char toolong[BW_NAME_MAX + 1];
	memset(toolong, 'y', sizeof toolong);
	n[0].name = toolong;
	n[0].name_len = sizeof toolong;
	CHECK_EQ_INT(bw_tree_encode(n, 1, &b), BW_EINVAL);

	set_name(&n[0], "ok");
	n[0].type = 0;
	CHECK_EQ_INT(bw_tree_encode(n, 1, &b), BW_EINVAL);
	n[0].type = 8;
	CHECK_EQ_INT(bw_tree_encode(n, 1, &b), BW_EINVAL);
	n[0].type = BW_NODE_FIFO;
	n[0].mode = 010000;
	CHECK_EQ_INT(bw_tree_encode(n, 1, &b), BW_EINVAL);
	n[0].mode = 0644;
	n[0].target = "x";
	n[0].target_len = 1; /* target on a fifo */
	CHECK_EQ_INT(bw_tree_encode(n, 1, &b), BW_EINVAL);
	n[0].target_len = 0;
	CHECK_EQ_INT(bw_tree_encode(n, 1, &b), 0);
	CHECK(b.len > 0);

	/* a full output buffer leaves it as it was */
	struct bw_buf small;
	bw_buf_init(&small, 8);
	CHECK_EQ_INT(bw_tree_encode(n, 1, &small), BW_ETOOBIG);
	CHECK_EQ_INT(small.len, 0);
	bw_buf_release(&small);
	bw_buf_release(&b);
}

/* Node bytes as they appear in a one-node tree: the tree minus its 6-byte
 * header (magic, version, count 1). */
static void node_bytes(const struct bw_node *nd, struct bw_buf *out)
{
	struct bw_buf b;
	bw_buf_init(&b, 0);
	if (bw_tree_encode(nd, 1, &b) || b.len < 6 ||
	    bw_buf_append(out, b.data + 6, b.len - 6))
		abort();
	bw_buf_release(&b);
}

static void header(struct bw_buf *b, uint8_t version, uint8_t count)
{
	if (bw_buf_append(b, "BWTR", 4) || bw_buf_put_u8(b, version) ||
	    bw_buf_put_u8(b, count))
		abort();
}

static void test_decode_rejects(void)
{
	struct bw_node a, c, d;
	struct bw_buf b;
	memset(&a, 0, sizeof a);
	a.type = BW_NODE_SYMLINK;
	set_name(&a, "a");
	a.target = "t";
	a.target_len = 1;
	c = a;
	set_name(&c, "c");
	memset(&d, 0, sizeof d);
	d.type = BW_NODE_DIR;
	set_name(&d, "d");
	bw_buf_init(&b, 0);

	/* unsorted */
	header(&b, 1, 2);
	node_bytes(&c, &b);
	node_bytes(&a, &b);
	expect_decode(b.data, b.len, BW_EFORMAT);
	/* duplicate */
	bw_buf_reset(&b);
	header(&b, 1, 2);
	node_bytes(&a, &b);
	node_bytes(&a, &b);
	expect_decode(b.data, b.len, BW_EFORMAT);

	/* a valid three-node tree, then every damage to it */
	bw_buf_reset(&b);
	header(&b, 1, 3);
	node_bytes(&a, &b);
	node_bytes(&c, &b);
	node_bytes(&d, &b);
	size_t good_len = b.len;
	uint8_t good[512];
	CHECK(good_len < sizeof good);
	memcpy(good, b.data, good_len);
	{
		struct bw_buf ok;
		struct bw_tree t;
		bw_buf_init(&ok, 0);
		CHECK_EQ_INT(bw_buf_append(&ok, good, good_len), 0);
		CHECK_EQ_INT(bw_tree_decode(&ok, &t), 0);
		CHECK_EQ_INT(t.n, 3);
		bw_tree_release(&t);
	}
	for (size_t i = 0; i < good_len; i++)
		expect_decode(good, i, BW_EFORMAT); /* truncated */
	uint8_t tmp[512];
	memcpy(tmp, good, good_len);
	tmp[good_len] = 0;
	expect_decode(tmp, good_len + 1, BW_EFORMAT); /* trailing byte */

	memcpy(tmp, good, good_len);
	tmp[4] = 2;
	expect_decode(tmp, good_len, BW_EVERSION);
	tmp[4] = 0;
	expect_decode(tmp, good_len, BW_EVERSION);
	memcpy(tmp, good, good_len);
	tmp[0] = 'X';
	expect_decode(tmp, good_len, BW_EFORMAT);

	/* count larger and smaller than the nodes present */
	memcpy(tmp, good, good_len);
	tmp[5] = 4;
	expect_decode(tmp, good_len, BW_EFORMAT);
	tmp[5] = 2;
	expect_decode(tmp, good_len, BW_EFORMAT);
	/* a huge count in a small input */
	static const uint8_t huge[] = {'B', 'W', 'T', 'R', 1, 0xff, 0xff, 0xff, 0x01};
	expect_decode(huge, sizeof huge, BW_EFORMAT);

	/* node a starts at 6: name len, name, type */
	memcpy(tmp, good, good_len);
	tmp[7] = '/';
	expect_decode(tmp, good_len, BW_EFORMAT);
	tmp[7] = 0;
	expect_decode(tmp, good_len, BW_EFORMAT);
	tmp[7] = '.';
	expect_decode(tmp, good_len, BW_EFORMAT);
	memcpy(tmp, good, good_len);
	tmp[8] = 0; /* type */
	expect_decode(tmp, good_len, BW_EFORMAT);
	tmp[8] = 8;
	expect_decode(tmp, good_len, BW_EFORMAT);
	tmp[8] = BW_NODE_FIFO; /* a fifo with a target */
	expect_decode(tmp, good_len, BW_EFORMAT);

	/* non-shortest varint: name length 1 written as 0x81 0x00 */
	bw_buf_reset(&b);
	header(&b, 1, 1);
	CHECK_EQ_INT(bw_buf_put_u8(&b, 0x81), 0);
	CHECK_EQ_INT(bw_buf_put_u8(&b, 0x00), 0);
	node_bytes(&a, &b); /* then a's bytes minus its length byte */
	memmove(b.data + 8, b.data + 9, b.len - 9);
	b.len--;
	expect_decode(b.data, b.len, BW_EFORMAT);

	/* name too long: BW_NAME_MAX + 1 bytes */
	bw_buf_reset(&b);
	header(&b, 1, 1);
	static char ln[BW_NAME_MAX + 1];
	memset(ln, 'n', sizeof ln);
	CHECK_EQ_INT(bw_buf_put_bytes(&b, ln, sizeof ln), 0);
	for (int i = 0; i < 20; i++)
		CHECK_EQ_INT(bw_buf_put_u8(&b, i == 0 ? BW_NODE_FIFO : 0), 0);
	expect_decode(b.data, b.len, BW_EFORMAT);

	/* xattr value over the limit is refused before reading it */
	bw_buf_reset(&b);
	header(&b, 1, 1);
	{
		struct bw_node x;
		memset(&x, 0, sizeof x);
		x.type = BW_NODE_FIFO;
		set_name(&x, "x");
		struct bw_buf one;
		bw_buf_init(&one, 0);
		CHECK_EQ_INT(bw_tree_encode(&x, 1, &one), 0);
		/* replace the final nxattrs (0) with 1 xattr of a huge value */
		CHECK_EQ_INT(bw_buf_append(&b, one.data + 6, one.len - 7), 0);
		CHECK_EQ_INT(bw_buf_put_varint(&b, 1), 0);
		CHECK_EQ_INT(bw_buf_put_bytes(&b, "user.a", 6), 0);
		CHECK_EQ_INT(bw_buf_put_varint(&b, BW_XATTR_MAX_VALUE + 1), 0);
		size_t at = b.len;
		CHECK_EQ_INT(bw_buf_reserve(&b, BW_XATTR_MAX_VALUE + 1), 0);
		memset(b.data + at, 'v', BW_XATTR_MAX_VALUE + 1);
		b.len += BW_XATTR_MAX_VALUE + 1;
		expect_decode(b.data, b.len, BW_EFORMAT);
		/* exactly at the limit is fine */
		b.len = at;
		b.len--; /* drop the 3-byte length varint */
		b.len -= 2;
		CHECK_EQ_INT(bw_buf_put_varint(&b, BW_XATTR_MAX_VALUE), 0);
		at = b.len;
		b.len += BW_XATTR_MAX_VALUE;
		struct bw_buf ok;
		struct bw_tree t;
		bw_buf_init(&ok, 0);
		CHECK_EQ_INT(bw_buf_append(&ok, b.data, b.len), 0);
		CHECK_EQ_INT(bw_tree_decode(&ok, &t), 0);
		CHECK(t.n == 1 && t.nodes[0].nxattrs == 1 &&
		      t.nodes[0].xattrs[0].value_len == BW_XATTR_MAX_VALUE);
		bw_tree_release(&t);
		bw_buf_release(&one);
	}

	/* file whose content count exceeds what is left */
	bw_buf_reset(&b);
	header(&b, 1, 1);
	{
		struct bw_node x;
		struct bw_id ids[2] = {id_of(1), id_of(2)};
		memset(&x, 0, sizeof x);
		x.type = BW_NODE_FILE;
		set_name(&x, "f");
		x.content = ids;
		x.ncontent = 2;
		node_bytes(&x, &b);
		b.data[b.len - 2 * BW_ID_LEN - 1] = 3;
		expect_decode(b.data, b.len, BW_EFORMAT);
	}
	expect_decode(NULL, 0, BW_EFORMAT);
	bw_buf_release(&b);
}

int main(void)
{
	test_cmp();
	test_all_types();
	test_empty_and_odd_names();
	test_encode_rejects();
	test_decode_rejects();
	TEST_DONE();
}
