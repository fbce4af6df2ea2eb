/* Key files: the master keys wrapped under Argon2id-derived keys, one
 * file per passphrase.  The payload also carries a MAC of the config, so
 * a storage that swaps the config (other chunker, other ID) is caught. */
#include "repo_int.h"

#include <pwd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PAYLOAD_LEN (4 + 1 + 3 * BW_KEY_LEN + BW_ID_LEN)
static const char key_ad[] = "bulwark key";

static void who(char *host, size_t hn, char *user, size_t un)
{
	if (gethostname(host, hn))
		snprintf(host, hn, "unknown");
	host[hn - 1] = 0;
	struct passwd *pw = getpwuid(getuid());
	snprintf(user, un, "%s", pw ? pw->pw_name : "unknown");
}

/* Seal the repository keys under a new passphrase into a key file body. */
int bw_key_make(const struct bw_keys *keys, const struct bw_id *config_mac,
                const char *pass, size_t passlen, uint64_t ops, size_t mem,
                struct bw_buf *out)
{
	struct bw_keyfile kf;
	uint8_t *pl = sodium_malloc(PAYLOAD_LEN + BW_KEY_LEN);
	if (!pl)
		return BW_ENOMEM;
	uint8_t *kek = pl + PAYLOAD_LEN;
	memset(&kf, 0, sizeof kf);
	kf.version = 1;
	kf.ops = ops;
	kf.mem = mem;
	kf.created_ns = bw_now_ns();
	who(kf.host, sizeof kf.host, kf.user, sizeof kf.user);
	bw_random(kf.salt, sizeof kf.salt);
	int r = bw_kdf(pass, passlen, kf.salt, ops, mem, kek);
	if (r) {
		r = bw_errf(r, "key derivation needs %zu MiB of memory", mem >> 20);
		goto out;
	}
	memcpy(pl, "BWKY", 4);
	pl[4] = 1;
	memcpy(pl + 5, keys->enc, BW_KEY_LEN);
	memcpy(pl + 5 + BW_KEY_LEN, keys->mac, BW_KEY_LEN);
	memcpy(pl + 5 + 2 * BW_KEY_LEN, keys->chunker, BW_KEY_LEN);
	memcpy(pl + 5 + 3 * BW_KEY_LEN, config_mac->b, BW_ID_LEN);
	kf.sealed_len = PAYLOAD_LEN + BW_SEAL_OVERHEAD;
	if ((r = bw_seal(kek, key_ad, sizeof key_ad - 1, pl, PAYLOAD_LEN, kf.sealed)))
		goto out;
	r = bw_keyfile_encode(&kf, out);
out:
	sodium_free(pl);
	return r;
}

/* Try one key file; BW_EPASS if the passphrase does not open it. */
int bw_key_try(const uint8_t *file, size_t n, const char *pass, size_t passlen,
               struct bw_keys *keys, struct bw_id *config_mac)
{
	struct bw_keyfile kf;
	int r = bw_keyfile_decode(file, n, &kf);
	if (r)
		return r;
	if (kf.sealed_len != PAYLOAD_LEN + BW_SEAL_OVERHEAD)
		return bw_errf(BW_EFORMAT, "key file: wrong payload size");
	uint8_t *pl = sodium_malloc(PAYLOAD_LEN + BW_KEY_LEN);
	if (!pl)
		return BW_ENOMEM;
	uint8_t *kek = pl + PAYLOAD_LEN;
	if ((r = bw_kdf(pass, passlen, kf.salt, kf.ops, kf.mem, kek)))
		goto out;
	if (bw_open(kek, key_ad, sizeof key_ad - 1, kf.sealed, kf.sealed_len, pl)) {
		r = BW_EPASS;
		goto out;
	}
	if (memcmp(pl, "BWKY", 4) || pl[4] != 1) {
		r = bw_errf(BW_EVERSION, "key payload version not supported");
		goto out;
	}
	memcpy(keys->enc, pl + 5, BW_KEY_LEN);
	memcpy(keys->mac, pl + 5 + BW_KEY_LEN, BW_KEY_LEN);
	memcpy(keys->chunker, pl + 5 + 2 * BW_KEY_LEN, BW_KEY_LEN);
	memcpy(config_mac->b, pl + 5 + 3 * BW_KEY_LEN, BW_ID_LEN);
out:
	sodium_free(pl);
	return r;
}

static int write_key(struct bw_repo *r, struct bw_buf *body, char name[2 * BW_ID_LEN + 1])
{
	struct bw_id h;
	bw_sha256(body->data, body->len, &h);
	bw_id_hex(&h, name);
	return bw_be_write(r->be, BW_OBJ_KEY, name, body->data, body->len);
}

static int config_mac(struct bw_repo *r, struct bw_id *mac)
{
	struct bw_buf cfg;
	bw_buf_init(&cfg, BW_CONFIG_MAX);
	int rc = bw_be_read(r->be, BW_OBJ_CONFIG, "config", 0, 0, &cfg);
	if (!rc)
		bw_mac_id(r->keys, cfg.data, cfg.len, mac);
	bw_buf_release(&cfg);
	return rc;
}

int bw_key_add(struct bw_repo *r, const char *pass, size_t passlen,
               char name_out[2 * BW_ID_LEN + 1])
{
	struct bw_id mac;
	struct bw_buf body;
	bw_buf_init(&body, BW_KEYFILE_MAX);
	int rc = config_mac(r, &mac);
	if (!rc)
		rc = bw_key_make(r->keys, &mac, pass, passlen, BW_KDF_OPS_DEFAULT,
		                 BW_KDF_MEM_DEFAULT, &body);
	if (!rc)
		rc = write_key(r, &body, name_out);
	bw_buf_release(&body);
	return rc;
}

struct klist {
	struct bw_key_info *v;
	size_t n, cap;
	struct bw_repo *r;
};

static int klist_add(void *arg, const char *name, uint64_t size)
{
	struct klist *l = arg;
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 8;
		struct bw_key_info *v = realloc(l->v, nc * sizeof *v);
		if (!v)
			return BW_ENOMEM;
		l->v = v;
		l->cap = nc;
	}
	struct bw_key_info *k = &l->v[l->n];
	memset(k, 0, sizeof *k);
	snprintf(k->name, sizeof k->name, "%s", name);
	k->current = !strcmp(name, l->r->key_name);
	struct bw_buf b;
	struct bw_keyfile kf;
	bw_buf_init(&b, BW_KEYFILE_MAX);
	if (size <= BW_KEYFILE_MAX &&
	    !bw_be_read(l->r->be, BW_OBJ_KEY, name, 0, 0, &b) &&
	    !bw_keyfile_decode(b.data, b.len, &kf)) {
		snprintf(k->host, sizeof k->host, "%s", kf.host);
		snprintf(k->user, sizeof k->user, "%s", kf.user);
		k->created_ns = kf.created_ns;
	}
	bw_err_clear();
	bw_buf_release(&b);
	l->n++;
	return 0;
}

int bw_key_list(struct bw_repo *r, struct bw_key_info **out, size_t *n)
{
	struct klist l = {NULL, 0, 0, r};
	int rc = bw_be_list(r->be, BW_OBJ_KEY, klist_add, &l);
	if (rc) {
		free(l.v);
		return rc;
	}
	*out = l.v;
	*n = l.n;
	return 0;
}

int bw_key_remove(struct bw_repo *r, const char *prefix)
{
	struct bw_key_info *v;
	size_t n, hit = 0, which = 0;
	int rc = bw_key_list(r, &v, &n);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++)
		if (!strncmp(v[i].name, prefix, strlen(prefix))) {
			hit++;
			which = i;
		}
	if (hit == 0)
		rc = bw_errf(BW_ENOENT, "no key matches '%s'", prefix);
	else if (hit > 1)
		rc = bw_errf(BW_EINVAL, "'%s' matches %zu keys: give more digits", prefix, hit);
	else if (v[which].current)
		rc = bw_errf(BW_EBUSY, "key %.8s is the one in use: open the repository with another key to remove it", v[which].name);
	else if (n == 1)
		rc = bw_errf(BW_EBUSY, "refusing to remove the last key");
	else
		rc = bw_be_remove(r->be, BW_OBJ_KEY, v[which].name);
	free(v);
	return rc;
}

int bw_key_passwd(struct bw_repo *r, const char *pass, size_t passlen)
{
	char name[2 * BW_ID_LEN + 1], old[2 * BW_ID_LEN + 1];
	int rc = bw_key_add(r, pass, passlen, name);
	if (rc)
		return rc;
	snprintf(old, sizeof old, "%s", r->key_name);
	snprintf(r->key_name, sizeof r->key_name, "%s", name);
	return bw_be_remove(r->be, BW_OBJ_KEY, old);
}
