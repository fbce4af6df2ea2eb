/* Config and key-file codecs (JSON, parsed before any key is known, so
 * both are treated as hostile input and fuzzed). */
#include "repo_int.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int get_u64(json_t *o, const char *k, uint64_t *v)
{
	json_t *x = json_object_get(o, k);
	if (!json_is_integer(x) || json_integer_value(x) < 0)
		return BW_EFORMAT;
	*v = (uint64_t)json_integer_value(x);
	return 0;
}

static int get_hex(json_t *o, const char *k, uint8_t *out, size_t n)
{
	json_t *x = json_object_get(o, k);
	if (!json_is_string(x) || json_string_length(x) != 2 * n)
		return BW_EFORMAT;
	return bw_hex_decode(json_string_value(x), out, n);
}

static int get_time(json_t *o, const char *k, int64_t *ns)
{
	json_t *x = json_object_get(o, k);
	if (!json_is_string(x))
		return BW_EFORMAT;
	return bw_time_parse(json_string_value(x), ns) ? BW_EFORMAT : 0;
}

static json_t *load(const uint8_t *p, size_t n, size_t max)
{
	json_error_t e;
	if (n > max)
		return NULL;
	json_t *j = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, &e);
	if (j && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

int bw_config_decode(const uint8_t *p, size_t n, struct bw_config *c)
{
	memset(c, 0, sizeof *c);
	json_t *j = load(p, n, BW_CONFIG_MAX);
	if (!j)
		return bw_errf(BW_EFORMAT, "config: not valid JSON");
	int r = BW_EFORMAT;
	uint64_t v, mn, avg, mx, comp;
	json_t *ch;
	if (get_u64(j, "version", &v))
		goto out;
	if (v < 1 || v > BW_REPO_VERSION) {
		r = bw_errf(BW_EVERSION,
		            "repository format version %llu is not supported "
		            "(this bulwark reads versions 1 to %d)",
		            (unsigned long long)v, BW_REPO_VERSION);
		goto out;
	}
	c->version = (int)v;
	ch = json_object_get(j, "chunker");
	if (get_hex(j, "id", c->id.b, BW_ID_LEN) || !json_is_object(ch) ||
	    get_u64(ch, "min", &mn) || get_u64(ch, "avg", &avg) ||
	    get_u64(ch, "max", &mx) || get_u64(j, "compression", &comp) ||
	    get_time(j, "created", &c->created_ns))
		goto out;
	if (mn > BW_CHUNK_MAX_LIMIT || avg > BW_CHUNK_MAX_LIMIT ||
	    mx > BW_CHUNK_MAX_LIMIT || comp > 22)
		goto out;
	c->chunker.min = (uint32_t)mn;
	c->chunker.avg = (uint32_t)avg;
	c->chunker.max = (uint32_t)mx;
	c->compression = (int)comp;
	r = 0;
out:
	json_decref(j);
	if (r == BW_EFORMAT)
		r = bw_errf(r, "config: missing or invalid fields");
	return r;
}

int bw_config_encode(const struct bw_config *c, struct bw_buf *out)
{
	char id[2 * BW_ID_LEN + 1], ts[40];
	bw_id_hex(&c->id, id);
	bw_time_format(c->created_ns, ts);
	return bw_buf_printf(out,
	        "{\n  \"version\": %d,\n  \"id\": \"%s\",\n  \"created\": \"%s\",\n"
	        "  \"chunker\": {\"algorithm\": \"fastcdc-keyed\", \"min\": %u, \"avg\": %u, \"max\": %u},\n"
	        "  \"compression\": %d\n}\n",
	        c->version, id, ts, c->chunker.min, c->chunker.avg,
	        c->chunker.max, c->compression);
}

int bw_keyfile_decode(const uint8_t *p, size_t n, struct bw_keyfile *k)
{
	memset(k, 0, sizeof *k);
	json_t *j = load(p, n, BW_KEYFILE_MAX);
	if (!j)
		return bw_errf(BW_EFORMAT, "key file: not valid JSON");
	int r = BW_EFORMAT;
	uint64_t v, ops, mem;
	json_t *kdf = json_object_get(j, "kdf"), *d = json_object_get(j, "data");
	json_t *h = json_object_get(j, "host"), *u = json_object_get(j, "user");
	if (get_u64(j, "version", &v))
		goto out;
	if (v != 1) {
		r = bw_errf(BW_EVERSION, "key file version %llu not supported",
		            (unsigned long long)v);
		goto out;
	}
	if (!json_is_string(kdf) || strcmp(json_string_value(kdf), "argon2id"))
		goto out;
	if (get_u64(j, "ops", &ops) || get_u64(j, "mem", &mem) ||
	    get_hex(j, "salt", k->salt, BW_SALT_LEN) ||
	    get_time(j, "created", &k->created_ns))
		goto out;
	/* bounds keep a hostile key file from costing hours or all memory */
	if (ops < 1 || ops > 64 || mem < 8192 || mem > ((uint64_t)4 << 30))
		goto out;
	k->ops = ops;
	k->mem = (size_t)mem;
	if (!json_is_string(d) || json_string_length(d) % 2 ||
	    json_string_length(d) / 2 > sizeof k->sealed ||
	    json_string_length(d) / 2 < BW_SEAL_OVERHEAD)
		goto out;
	k->sealed_len = json_string_length(d) / 2;
	if (bw_hex_decode(json_string_value(d), k->sealed, k->sealed_len))
		goto out;
	if (json_is_string(h))
		snprintf(k->host, sizeof k->host, "%s", json_string_value(h));
	if (json_is_string(u))
		snprintf(k->user, sizeof k->user, "%s", json_string_value(u));
	k->version = 1;
	r = 0;
out:
	json_decref(j);
	if (r == BW_EFORMAT)
		r = bw_errf(r, "key file: missing or invalid fields");
	return r;
}

int bw_keyfile_encode(const struct bw_keyfile *k, struct bw_buf *out)
{
	char salt[2 * BW_SALT_LEN + 1], data[2 * sizeof k->sealed + 1], ts[40];
	bw_hex_encode(k->salt, BW_SALT_LEN, salt);
	bw_hex_encode(k->sealed, k->sealed_len, data);
	bw_time_format(k->created_ns, ts);
	json_t *j = json_pack("{s:i, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s}",
	                      "version", 1, "created", ts, "host", k->host,
	                      "user", k->user, "kdf", "argon2id",
	                      "ops", (json_int_t)k->ops, "mem", (json_int_t)k->mem,
	                      "salt", salt, "data", data);
	if (!j)
		return BW_ENOMEM;
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(j);
	if (!s)
		return BW_ENOMEM;
	int r = bw_buf_append(out, s, strlen(s));
	free(s);
	return r;
}
