/* Snapshot objects: JSON (UTF-8) through jansson.
 *
 *   {"version":1, "time":"2026-11-28T01:02:03.123456789Z",
 *    "tree":"<64 hex>", "parent":"<64 hex>" (optional),
 *    "hostname":"...", "username":"...", "uid":0, "gid":0,
 *    "paths":[...], "tags":[...], "excludes":[...],
 *    "program_version":"...",
 *    "summary":{"files_new":0, ..., "backup_start":"<time>",
 *               "backup_end":"<time>"}}
 *
 * The snapshot's ID is the storage name of the object and is not part of
 * the JSON.  Parsing is for untrusted input: the size, the number of array
 * items and every type are checked; "time" and "tree" are required, other
 * fields default to empty/zero, unknown fields are ignored (so newer
 * writers may add fields), and a "version" above 1 is refused.  Times must
 * be RFC 3339 with a 'T', seconds and an explicit zone ('Z' or +hh:mm). */
#include <bulwark/repo.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define SNAPSHOT_VERSION 1
#define SNAPSHOT_MAX_BYTES ((size_t)16 << 20)
#define SNAPSHOT_MAX_ITEMS 100000

/* ---- helpers ---------------------------------------------------------------- */

static char *dup_len(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (!p)
		return NULL;
	if (n)
		memcpy(p, s, n);
	p[n] = 0;
	return p;
}

static void free_list(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void bw_snapshot_release(struct bw_snapshot *s)
{
	free(s->hostname);
	free(s->username);
	free(s->program_version);
	free_list(s->paths, s->npaths);
	free_list(s->tags, s->ntags);
	free_list(s->excludes, s->nexcludes);
	memset(s, 0, sizeof *s);
}

int bw_snapshot_has_tag(const struct bw_snapshot *s, const char *tag)
{
	for (size_t i = 0; i < s->ntags; i++)
		if (s->tags[i] && strcmp(s->tags[i], tag) == 0)
			return 1;
	return 0;
}

/* ---- serialising ------------------------------------------------------------ */

/* json_object_set_new steals the value even on failure. */
static int set(json_t *o, const char *key, json_t *v)
{
	if (!v)
		return bw_errf(BW_EINVAL, "snapshot: field \"%s\" cannot be "
		               "stored (not UTF-8, or out of memory)", key);
	return json_object_set_new(o, key, v) ? BW_ENOMEM : 0;
}

static int time_shape_ok(const char *s, size_t n);

/* NULL (refused by set()) for times the parser would not take back. */
static json_t *jtime(int64_t ns)
{
	char t[40];
	bw_time_format(ns, t);
	return time_shape_ok(t, strlen(t)) ? json_string(t) : NULL;
}

static json_t *jid(const struct bw_id *id)
{
	char h[2 * BW_ID_LEN + 1];
	bw_id_hex(id, h);
	return json_string(h);
}

static int set_u64(json_t *o, const char *key, uint64_t v)
{
	/* jansson integers are signed 64-bit */
	if (v > INT64_MAX)
		return bw_errf(BW_EINVAL, "snapshot: %s out of range", key);
	return set(o, key, json_integer((json_int_t)v));
}

static int set_list(json_t *o, const char *key, char *const *v, size_t n)
{
	json_t *a = json_array();
	if (!a)
		return BW_ENOMEM;
	int r = json_object_set_new(o, key, a) ? BW_ENOMEM : 0;
	for (size_t i = 0; !r && i < n; i++) {
		json_t *e = v[i] ? json_string(v[i]) : NULL;
		if (!e)
			r = bw_errf(BW_EINVAL, "snapshot: %s[%zu] cannot be "
			            "stored (missing or not UTF-8)", key, i);
		else if (json_array_append_new(a, e))
			r = BW_ENOMEM;
	}
	return r;
}

static int set_str(json_t *o, const char *key, const char *v)
{
	return set(o, key, json_string(v ? v : ""));
}

static int summary_to_json(const struct bw_snapshot_summary *m, json_t *o)
{
	int r;
	if ((r = set_u64(o, "files_new", m->files_new)) ||
	    (r = set_u64(o, "files_changed", m->files_changed)) ||
	    (r = set_u64(o, "files_unmodified", m->files_unmodified)) ||
	    (r = set_u64(o, "dirs_new", m->dirs_new)) ||
	    (r = set_u64(o, "dirs_changed", m->dirs_changed)) ||
	    (r = set_u64(o, "dirs_unmodified", m->dirs_unmodified)) ||
	    (r = set_u64(o, "data_blobs", m->data_blobs)) ||
	    (r = set_u64(o, "tree_blobs", m->tree_blobs)) ||
	    (r = set_u64(o, "data_added", m->data_added)) ||
	    (r = set_u64(o, "data_added_packed", m->data_added_packed)) ||
	    (r = set_u64(o, "total_files", m->total_files)) ||
	    (r = set_u64(o, "total_bytes", m->total_bytes)) ||
	    (r = set_u64(o, "errors", m->errors)) ||
	    (r = set(o, "backup_start", jtime(m->start_ns))) ||
	    (r = set(o, "backup_end", jtime(m->end_ns))))
		return r;
	return 0;
}

int bw_snapshot_to_json(const struct bw_snapshot *s, struct bw_buf *out)
{
	json_t *o = json_object(), *sum = NULL;
	char *text = NULL;
	int r;

	if (!o)
		return BW_ENOMEM;
	if ((r = set(o, "version", json_integer(SNAPSHOT_VERSION))) ||
	    (r = set(o, "time", jtime(s->time_ns))) ||
	    (r = set(o, "tree", jid(&s->tree))))
		goto out;
	if (s->has_parent && (r = set(o, "parent", jid(&s->parent))))
		goto out;
	if ((r = set_str(o, "hostname", s->hostname)) ||
	    (r = set_str(o, "username", s->username)) ||
	    (r = set(o, "uid", json_integer(s->uid))) ||
	    (r = set(o, "gid", json_integer(s->gid))) ||
	    (r = set_list(o, "paths", s->paths, s->npaths)) ||
	    (r = set_list(o, "tags", s->tags, s->ntags)) ||
	    (r = set_list(o, "excludes", s->excludes, s->nexcludes)) ||
	    (r = set_str(o, "program_version", s->program_version)))
		goto out;
	if (!(sum = json_object())) {
		r = BW_ENOMEM;
		goto out;
	}
	if ((r = summary_to_json(&s->summary, sum)))
		goto out;
	r = set(o, "summary", sum);
	sum = NULL;
	if (r)
		goto out;
	if (!(text = json_dumps(o, JSON_COMPACT))) {
		r = BW_ENOMEM;
		goto out;
	}
	r = bw_buf_append(out, text, strlen(text));
out:
	free(text);
	json_decref(sum);
	json_decref(o);
	return r;
}

/* ---- parsing ------------------------------------------------------------------ */

static int is_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

/* Strict RFC 3339 check before bw_time_parse, which also accepts local
 * times and loose forms.  Years are limited to what int64 nanoseconds
 * hold (1678..2261). */
static int time_shape_ok(const char *s, size_t n)
{
	if (n < 20 || !is_digits(s, 4) || s[4] != '-' || !is_digits(s + 5, 2) ||
	    s[7] != '-' || !is_digits(s + 8, 2) || s[10] != 'T' ||
	    !is_digits(s + 11, 2) || s[13] != ':' || !is_digits(s + 14, 2) ||
	    s[16] != ':' || !is_digits(s + 17, 2))
		return 0;
	int year = (s[0] - '0') * 1000 + (s[1] - '0') * 100 +
	           (s[2] - '0') * 10 + (s[3] - '0');
	if (year < 1678 || year > 2261)
		return 0;
	size_t i = 19;
	if (s[i] == '.') {
		size_t d = ++i;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == d || i - d > 9)
			return 0;
	}
	if (i < n && s[i] == 'Z')
		return i + 1 == n;
	if (i < n && (s[i] == '+' || s[i] == '-'))
		return n - i == 6 && is_digits(s + i + 1, 2) && s[i + 3] == ':' &&
		       is_digits(s + i + 4, 2);
	return 0;
}

static int get_time(json_t *v, const char *what, int64_t *ns)
{
	if (!json_is_string(v))
		return bw_errf(BW_EFORMAT, "snapshot: %s is not a string", what);
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if (strlen(s) != n || !time_shape_ok(s, n) || bw_time_parse(s, ns))
		return bw_errf(BW_EFORMAT, "snapshot: %s is not an RFC 3339 time",
		               what);
	return 0;
}

static int get_id(json_t *v, const char *what, struct bw_id *id)
{
	if (!json_is_string(v) || json_string_length(v) != 2 * BW_ID_LEN ||
	    bw_id_parse(json_string_value(v), id))
		return bw_errf(BW_EFORMAT, "snapshot: %s is not a %d-digit hex ID",
		               what, 2 * BW_ID_LEN);
	return 0;
}

/* Copy of a JSON string; absent (NULL) gives "". */
static int get_str(json_t *v, const char *what, char **out)
{
	const char *s = "";
	size_t n = 0;
	if (v) {
		if (!json_is_string(v))
			return bw_errf(BW_EFORMAT, "snapshot: %s is not a string",
			               what);
		s = json_string_value(v);
		n = json_string_length(v);
		if (memchr(s, 0, n))
			return bw_errf(BW_EFORMAT, "snapshot: %s contains NUL",
			               what);
	}
	return (*out = dup_len(s, n)) ? 0 : BW_ENOMEM;
}

static int get_u64(json_t *v, const char *what, uint64_t max, uint64_t *out)
{
	if (!v) {
		*out = 0;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > max)
		return bw_errf(BW_EFORMAT, "snapshot: %s is not an integer in "
		               "0..%llu", what, (unsigned long long)max);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int get_u32(json_t *v, const char *what, uint32_t *out)
{
	uint64_t x = 0;
	int r = get_u64(v, what, UINT32_MAX, &x);
	*out = (uint32_t)x;
	return r;
}

static int get_list(json_t *v, const char *what, char ***out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (!v)
		return 0;
	if (!json_is_array(v))
		return bw_errf(BW_EFORMAT, "snapshot: %s is not an array", what);
	size_t count = json_array_size(v);
	if (count > SNAPSHOT_MAX_ITEMS)
		return bw_errf(BW_EFORMAT, "snapshot: %s has %zu items, limit %d",
		               what, count, SNAPSHOT_MAX_ITEMS);
	if (!count)
		return 0;
	if (!(*out = calloc(count, sizeof **out)))
		return BW_ENOMEM;
	/* *n counts the filled slots so the caller can free a partial list */
	for (size_t i = 0; i < count; i++) {
		int r = get_str(json_array_get(v, i), what, &(*out)[i]);
		if (r)
			return r;
		++*n;
	}
	return 0;
}

static int summary_from_json(json_t *o, struct bw_snapshot_summary *m)
{
	static const struct {
		const char *key;
		size_t off;
	} fields[] = {
#define F(x) {#x, offsetof(struct bw_snapshot_summary, x)}
		F(files_new), F(files_changed), F(files_unmodified),
		F(dirs_new), F(dirs_changed), F(dirs_unmodified),
		F(data_blobs), F(tree_blobs), F(data_added),
		F(data_added_packed), F(total_files), F(total_bytes), F(errors),
#undef F
	};
	int r;
	if (!json_is_object(o))
		return bw_errf(BW_EFORMAT, "snapshot: summary is not an object");
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
		uint64_t x = 0;
		if ((r = get_u64(json_object_get(o, fields[i].key), fields[i].key,
		                 INT64_MAX, &x)))
			return r;
		memcpy((char *)m + fields[i].off, &x, sizeof x);
	}
	json_t *v;
	if ((v = json_object_get(o, "backup_start")) &&
	    (r = get_time(v, "summary.backup_start", &m->start_ns)))
		return r;
	if ((v = json_object_get(o, "backup_end")) &&
	    (r = get_time(v, "summary.backup_end", &m->end_ns)))
		return r;
	return 0;
}

int bw_snapshot_from_json(const uint8_t *p, size_t n, struct bw_snapshot *out)
{
	json_t *o = NULL, *v;
	json_error_t jerr;
	int r;

	memset(out, 0, sizeof *out);
	if (n > SNAPSHOT_MAX_BYTES) {
		r = bw_errf(BW_EFORMAT, "snapshot: %zu bytes, limit %zu", n,
		            SNAPSHOT_MAX_BYTES);
		goto out;
	}
	if (n == 0 || !(o = json_loadb((const char *)p, n,
	                               JSON_REJECT_DUPLICATES, &jerr))) {
		r = bw_errf(BW_EFORMAT, "snapshot: invalid JSON: %s",
		            n ? jerr.text : "empty");
		goto out;
	}
	if (!json_is_object(o)) {
		r = bw_errf(BW_EFORMAT, "snapshot: not a JSON object");
		goto out;
	}
	if ((v = json_object_get(o, "version"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 1) {
			r = bw_errf(BW_EFORMAT, "snapshot: invalid version");
			goto out;
		}
		if (json_integer_value(v) > SNAPSHOT_VERSION) {
			r = bw_errf(BW_EVERSION, "snapshot: format version %lld "
			            "not supported",
			            (long long)json_integer_value(v));
			goto out;
		}
	}
	if (!(v = json_object_get(o, "time"))) {
		r = bw_errf(BW_EFORMAT, "snapshot: no time");
		goto out;
	}
	if ((r = get_time(v, "time", &out->time_ns)))
		goto out;
	if (!(v = json_object_get(o, "tree"))) {
		r = bw_errf(BW_EFORMAT, "snapshot: no tree");
		goto out;
	}
	if ((r = get_id(v, "tree", &out->tree)))
		goto out;
	if ((v = json_object_get(o, "parent")) && !json_is_null(v)) {
		if ((r = get_id(v, "parent", &out->parent)))
			goto out;
		out->has_parent = 1;
	}
	if ((r = get_str(json_object_get(o, "hostname"), "hostname",
	                 &out->hostname)) ||
	    (r = get_str(json_object_get(o, "username"), "username",
	                 &out->username)) ||
	    (r = get_str(json_object_get(o, "program_version"),
	                 "program_version", &out->program_version)) ||
	    (r = get_u32(json_object_get(o, "uid"), "uid", &out->uid)) ||
	    (r = get_u32(json_object_get(o, "gid"), "gid", &out->gid)) ||
	    (r = get_list(json_object_get(o, "paths"), "paths", &out->paths,
	                  &out->npaths)) ||
	    (r = get_list(json_object_get(o, "tags"), "tags", &out->tags,
	                  &out->ntags)) ||
	    (r = get_list(json_object_get(o, "excludes"), "excludes",
	                  &out->excludes, &out->nexcludes)))
		goto out;
	if ((v = json_object_get(o, "summary")) &&
	    (r = summary_from_json(v, &out->summary)))
		goto out;
	r = 0;
out:
	json_decref(o);
	if (r)
		bw_snapshot_release(out);
	return r;
}
