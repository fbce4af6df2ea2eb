/* Snapshot JSON: round trip, required fields, strict types, limits. */
#include <bulwark/repo.h>

#include "test.h"

#define TREE_HEX "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static int parse(const char *json, struct bw_snapshot *s)
{
	bw_err_clear();
	return bw_snapshot_from_json((const uint8_t *)json, strlen(json), s);
}

static int is_zeroed(const struct bw_snapshot *s)
{
	static const struct bw_snapshot z;
	return memcmp(s, &z, sizeof z) == 0;
}

static void expect_fail(const char *json, int code)
{
	struct bw_snapshot s;
	int r = parse(json, &s);
	CHECK_EQ_INT(r, code);
	if (r != code)
		fprintf(stderr, "  input: %.200s\n", json);
	CHECK(is_zeroed(&s)); /* left released */
	CHECK(bw_err_msg()[0] != 0);
}

static int lists_eq(char **a, size_t an, char **b, size_t bn)
{
	if (an != bn)
		return 0;
	for (size_t i = 0; i < an; i++)
		if (strcmp(a[i], b[i]))
			return 0;
	return 1;
}

static void test_round_trip(void)
{
	char *paths[] = {"/home/alice", "/etc", "/tmp/sp ace \"q\" \\ caf\xc3\xa9"};
	char *tags[] = {"daily", "important"};
	char *excludes[] = {"*.o", "**/cache"};
	struct bw_snapshot s, t;
	struct bw_buf b;
	memset(&s, 0, sizeof s);
	s.time_ns = 1764291723123456789LL;
	for (int i = 0; i < BW_ID_LEN; i++) {
		s.tree.b[i] = (uint8_t)i;
		s.parent.b[i] = (uint8_t)(255 - i);
		s.id.b[i] = 7; /* not serialised */
	}
	s.has_parent = 1;
	s.hostname = "host.example";
	s.username = "alice";
	s.uid = 1000;
	s.gid = UINT32_MAX;
	s.paths = paths;
	s.npaths = 3;
	s.tags = tags;
	s.ntags = 2;
	s.excludes = excludes;
	s.nexcludes = 2;
	s.program_version = "bulwark 0.1.0";
	s.summary.files_new = 1;
	s.summary.files_changed = 2;
	s.summary.files_unmodified = 3;
	s.summary.dirs_new = 4;
	s.summary.dirs_changed = 5;
	s.summary.dirs_unmodified = 6;
	s.summary.data_blobs = 7;
	s.summary.tree_blobs = 8;
	s.summary.data_added = 9;
	s.summary.data_added_packed = 10;
	s.summary.total_files = 11;
	s.summary.total_bytes = INT64_MAX;
	s.summary.errors = 13;
	s.summary.start_ns = 1764291700000000001LL;
	s.summary.end_ns = -5; /* before the epoch still works */

	bw_buf_init(&b, 0);
	CHECK_EQ_INT(bw_snapshot_to_json(&s, &b), 0);
	CHECK_EQ_INT(bw_snapshot_from_json(b.data, b.len, &t), 0);
	CHECK(strstr(bw_buf_cstr(&b), "\"time\":\"2025-11-28T01:02:03.123456789Z\""));
	CHECK(strstr(bw_buf_cstr(&b), "\"version\":1"));
	CHECK(!strstr(bw_buf_cstr(&b), "\"id\""));
	CHECK_EQ_INT(t.time_ns, s.time_ns);
	CHECK(memcmp(&t.tree, &s.tree, BW_ID_LEN) == 0);
	CHECK(t.has_parent && memcmp(&t.parent, &s.parent, BW_ID_LEN) == 0);
	CHECK(t.id.b[0] == 0);
	CHECK(strcmp(t.hostname, s.hostname) == 0);
	CHECK(strcmp(t.username, s.username) == 0);
	CHECK(strcmp(t.program_version, s.program_version) == 0);
	CHECK_EQ_INT(t.uid, 1000);
	CHECK(t.gid == UINT32_MAX);
	CHECK(lists_eq(t.paths, t.npaths, paths, 3));
	CHECK(lists_eq(t.tags, t.ntags, tags, 2));
	CHECK(lists_eq(t.excludes, t.nexcludes, excludes, 2));
	CHECK(memcmp(&t.summary, &s.summary, sizeof s.summary) == 0);
	CHECK(bw_snapshot_has_tag(&t, "daily"));
	CHECK(bw_snapshot_has_tag(&t, "important"));
	CHECK(!bw_snapshot_has_tag(&t, "dail"));
	bw_snapshot_release(&t);
	CHECK(is_zeroed(&t));
	bw_snapshot_release(&t); /* twice is fine */

	/* minimal: no parent, NULL strings, no lists */
	memset(&s, 0, sizeof s);
	bw_buf_reset(&b);
	CHECK_EQ_INT(bw_snapshot_to_json(&s, &b), 0);
	CHECK(!strstr(bw_buf_cstr(&b), "parent"));
	CHECK_EQ_INT(bw_snapshot_from_json(b.data, b.len, &t), 0);
	CHECK(!t.has_parent && t.npaths == 0 && t.paths == NULL);
	CHECK(t.hostname && t.hostname[0] == 0);
	CHECK(!bw_snapshot_has_tag(&t, "x"));
	bw_snapshot_release(&t);

	/* not UTF-8 cannot be stored in JSON */
	char *bad[] = {"/tmp/\xff"};
	s.paths = bad;
	s.npaths = 1;
	bw_buf_reset(&b);
	CHECK_EQ_INT(bw_snapshot_to_json(&s, &b), BW_EINVAL);
	s.npaths = 0;
	/* times the parser could not read back */
	s.time_ns = INT64_MAX;
	CHECK_EQ_INT(bw_snapshot_to_json(&s, &b), BW_EINVAL);
	s.time_ns = 0;
	s.summary.errors = (uint64_t)INT64_MAX + 1;
	CHECK_EQ_INT(bw_snapshot_to_json(&s, &b), BW_EINVAL);
	bw_buf_release(&b);
}

static void test_minimal_and_lenient(void)
{
	struct bw_snapshot s;
	/* only the required fields; unknown fields ignored; other zones */
	CHECK_EQ_INT(parse("{\"time\":\"2026-01-02T03:04:05+01:00\","
	                   "\"tree\":\"" TREE_HEX "\",\"future\":[1,{}],"
	                   "\"parent\":null}", &s), 0);
	CHECK_EQ_INT(s.time_ns, 1767319445LL * 1000000000);
	CHECK(s.tree.b[1] == 0x11 && !s.has_parent);
	CHECK(s.hostname && s.username && s.program_version);
	bw_snapshot_release(&s);
	CHECK_EQ_INT(parse("{\"version\":1,\"time\":\"2026-01-02T03:04:05.5Z\","
	                   "\"tree\":\"" TREE_HEX "\",\"summary\":{}}", &s), 0);
	CHECK_EQ_INT(s.time_ns, 1767323045LL * 1000000000 + 500000000);
	bw_snapshot_release(&s);
}

static void test_rejects(void)
{
	/* missing required fields */
	expect_fail("{\"tree\":\"" TREE_HEX "\"}", BW_EFORMAT);
	expect_fail("{\"time\":\"2026-01-02T03:04:05Z\"}", BW_EFORMAT);
	expect_fail("{}", BW_EFORMAT);
	/* not JSON, not an object, duplicates, trailing junk */
	expect_fail("", BW_EFORMAT);
	expect_fail("{", BW_EFORMAT);
	expect_fail("[]", BW_EFORMAT);
	expect_fail("\"x\"", BW_EFORMAT);
	expect_fail("{\"time\":\"2026-01-02T03:04:05Z\",\"tree\":\"" TREE_HEX
	            "\",\"tree\":\"" TREE_HEX "\"}", BW_EFORMAT);
	expect_fail("{\"time\":\"2026-01-02T03:04:05Z\",\"tree\":\"" TREE_HEX
	            "\"} x", BW_EFORMAT);
	/* version */
	expect_fail("{\"version\":2,\"time\":\"2026-01-02T03:04:05Z\","
	            "\"tree\":\"" TREE_HEX "\"}", BW_EVERSION);
	expect_fail("{\"version\":\"1\",\"time\":\"2026-01-02T03:04:05Z\","
	            "\"tree\":\"" TREE_HEX "\"}", BW_EFORMAT);

#define BASE "{\"time\":\"2026-01-02T03:04:05Z\",\"tree\":\"" TREE_HEX "\","
	/* wrong types */
	static const char *wrong[] = {
		BASE "\"hostname\":1}",
		BASE "\"username\":null}",
		BASE "\"uid\":\"0\"}",
		BASE "\"uid\":-1}",
		BASE "\"uid\":4294967296}",
		BASE "\"gid\":1.5}",
		BASE "\"paths\":\"/\"}",
		BASE "\"paths\":[\"/\",2]}",
		BASE "\"tags\":{}}",
		BASE "\"excludes\":[null]}",
		BASE "\"paths\":[\"a\\u0000b\"]}",
		BASE "\"parent\":\"abc\"}",
		BASE "\"parent\":1}",
		BASE "\"summary\":[]}",
		BASE "\"summary\":{\"files_new\":-1}}",
		BASE "\"summary\":{\"errors\":\"3\"}}",
		BASE "\"summary\":{\"backup_start\":5}}",
		BASE "\"summary\":{\"backup_end\":\"yesterday\"}}",
		BASE "\"program_version\":[]}",
		"{\"time\":1,\"tree\":\"" TREE_HEX "\"}",
		"{\"time\":\"2026-01-02T03:04:05Z\",\"tree\":\"" TREE_HEX "00\"}",
		"{\"time\":\"2026-01-02T03:04:05Z\",\"tree\":\"zz" TREE_HEX "\"}",
		"{\"time\":\"2026-01-02T03:04:05Z\",\"tree\":null}",
	};
	for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++)
		expect_fail(wrong[i], BW_EFORMAT);
#undef BASE

	/* times: strict RFC 3339 only, inside the int64 nanosecond range */
	static const char *times[] = {
		"2026-01-02", "2026-01-02 03:04:05", "2026-01-02T03:04:05",
		"2026-01-02T03:04Z", "2026-01-02T03:04:05.Z",
		"2026-01-02T03:04:05.1234567890Z", "2026-01-02T03:04:05+1:00",
		"2026-01-02T03:04:05+01:0", "2026-01-02T03:04:05ZZ",
		"2026-13-02T03:04:05Z", "2026-01-02T25:04:05Z",
		"9999-01-02T03:04:05Z", "1000-01-02T03:04:05Z",
		"+026-01-02T03:04:05Z", " 2026-01-02T03:04:05Z", "",
	};
	for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
		char json[256];
		snprintf(json, sizeof json, "{\"time\":\"%s\",\"tree\":\"%s\"}",
		         times[i], TREE_HEX);
		expect_fail(json, BW_EFORMAT);
	}
}

/* Arrays at and over the item limit (100000). */
static void test_huge_arrays(void)
{
	struct bw_buf b;
	struct bw_snapshot s;
	bw_buf_init(&b, 0);
	for (int over = 0; over <= 1; over++) {
		bw_buf_reset(&b);
		CHECK_EQ_INT(bw_buf_printf(&b, "{\"time\":\"2026-01-02T03:04:05Z\","
		                           "\"tree\":\"%s\",\"tags\":[", TREE_HEX), 0);
		int n = 100000 + over, failed = 0;
		for (int i = 0; i < n; i++)
			failed |= bw_buf_append(&b, i ? ",\"t\"" : "\"t\"",
			                        i ? 4 : 3);
		CHECK_EQ_INT(failed, 0);
		CHECK_EQ_INT(bw_buf_append(&b, "]}", 2), 0);
		bw_err_clear();
		int r = bw_snapshot_from_json(b.data, b.len, &s);
		CHECK_EQ_INT(r, over ? BW_EFORMAT : 0);
		if (!r)
			CHECK_EQ_INT(s.ntags, 100000);
		bw_snapshot_release(&s);
	}
	/* over the byte limit is refused before parsing */
	bw_buf_reset(&b);
	CHECK_EQ_INT(bw_buf_reserve(&b, (16u << 20) + 1), 0);
	memset(b.data, ' ', (16u << 20) + 1);
	b.len = (16u << 20) + 1;
	CHECK_EQ_INT(bw_snapshot_from_json(b.data, b.len, &s), BW_EFORMAT);
	bw_buf_release(&b);
}

int main(void)
{
	test_round_trip();
	test_minimal_and_lenient();
	test_rejects();
	test_huge_arrays();
	TEST_DONE();
}
