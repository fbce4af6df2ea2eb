/* Known-answer tests for the crypto layer: SHA-256, HMAC-SHA-256 (RFC
 * 4231), XChaCha20-Poly1305 against libsodium's implementation, Argon2id
 * determinism, and tamper detection. */
#include <bulwark/crypto.h>

#include <sodium.h>

#include "test.h"

static void hex_to(const char *h, uint8_t *out, size_t n)
{
	if (bw_hex_decode(h, out, n))
		abort();
}

int main(void)
{
	CHECK(bw_crypto_init() == 0);

	/* SHA-256("abc") */
	struct bw_id id;
	uint8_t want[32];
	bw_sha256("abc", 3, &id);
	hex_to("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", want, 32);
	CHECK(memcmp(id.b, want, 32) == 0);

	/* streaming SHA-256 equals one-shot */
	struct bw_hash *s = bw_hash_new(BW_HASH_SHA256);
	CHECK(s != NULL);
	bw_hash_update(s, "a", 1);
	bw_hash_update(s, "bc", 2);
	struct bw_id id2;
	bw_hash_final(s, &id2);
	CHECK(memcmp(id2.b, want, 32) == 0);

	/* BLAKE3 test vectors (the BLAKE3 team's test_vectors.json; b3sum agrees): input of
	 * length n is bytes i % 251; key "whats the Elvish word for friend" */
	static uint8_t in[102400];
	for (size_t i = 0; i < sizeof in; i++)
		in[i] = (uint8_t)(i % 251);
	bw_hash(BW_HASH_BLAKE3, in, 0, &id);
	hex_to("af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262", want, 32);
	CHECK(memcmp(id.b, want, 32) == 0);
	bw_hash(BW_HASH_BLAKE3, in, 1024, &id);
	hex_to("42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7", want, 32);
	CHECK(memcmp(id.b, want, 32) == 0);
	/* streaming, in odd pieces, over the SIMD paths (many chunks) */
	s = bw_hash_new(BW_HASH_BLAKE3);
	CHECK(s != NULL);
	bw_hash_update(s, in, 1);
	bw_hash_update(s, in + 1, 40000);
	bw_hash_update(s, in + 40001, sizeof in - 40001);
	bw_hash_final(s, &id2);
	bw_hash(BW_HASH_BLAKE3, in, sizeof in, &id);
	CHECK(memcmp(id.b, id2.b, 32) == 0);
	hex_to("bc3e3d41a1146b069abffad3c0d44860cf664390afce4d9661f7902e7943e085", want, 32);
	CHECK(memcmp(id.b, want, 32) == 0);
	uint8_t b3key[BW_KEY_LEN];
	memcpy(b3key, "whats the Elvish word for friend", BW_KEY_LEN);
	bw_blake3_keyed(b3key, in, 1024, &id);
	hex_to("75c46f6f3d9eb4f55ecaaee480db732e6c2105546f1e675003687c31719c7ba4", want, 32);
	CHECK(memcmp(id.b, want, 32) == 0);

	/* RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
	 * bw_mac_id takes a 32-byte key, so use test case with a 32-byte key
	 * computed by libsodium's HMAC-SHA-256 as the reference. */
	struct bw_keys *k = bw_keys_new();
	CHECK(k != NULL);
	bw_keys_random(k);
	const char *msg = "what do ya want for nothing?";
	uint8_t ref[32];
	crypto_auth_hmacsha256_state st;
	crypto_auth_hmacsha256_init(&st, k->mac, 32);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)msg, strlen(msg));
	crypto_auth_hmacsha256_final(&st, ref);
	bw_mac_id(k, msg, strlen(msg), &id);
	CHECK(memcmp(id.b, ref, 32) == 0);
	/* and again (the per-thread context is reused) */
	bw_mac_id(k, msg, strlen(msg), &id);
	CHECK(memcmp(id.b, ref, 32) == 0);

	/* XChaCha20-Poly1305: ours opens libsodium's and vice versa */
	uint8_t pt[1000], ct[1000 + BW_SEAL_OVERHEAD], out[1000];
	for (size_t i = 0; i < sizeof pt; i++)
		pt[i] = (uint8_t)(i * 7);
	const char ad[] = "assoc";
	CHECK(bw_seal(k->enc, ad, 5, pt, sizeof pt, ct) == 0);
	unsigned long long ol = 0;
	CHECK(crypto_aead_xchacha20poly1305_ietf_decrypt(out, &ol, NULL, ct + 24,
	        sizeof pt + 16, (const uint8_t *)ad, 5, ct, k->enc) == 0);
	CHECK(ol == sizeof pt && memcmp(out, pt, sizeof pt) == 0);
	uint8_t ct2[1000 + BW_SEAL_OVERHEAD];
	randombytes_buf(ct2, 24);
	unsigned long long cl;
	crypto_aead_xchacha20poly1305_ietf_encrypt(ct2 + 24, &cl, pt, sizeof pt,
	        (const uint8_t *)ad, 5, NULL, ct2, k->enc);
	memset(out, 0, sizeof out);
	CHECK(bw_open(k->enc, ad, 5, ct2, sizeof ct2, out) == 0);
	CHECK(memcmp(out, pt, sizeof pt) == 0);

	/* any flipped bit, wrong AD, or truncation fails */
	int all_fail = 1;
	for (size_t i = 0; i < sizeof ct; i += 37) {
		ct[i] ^= 0x10;
		if (bw_open(k->enc, ad, 5, ct, sizeof ct, out) != BW_EAUTH)
			all_fail = 0;
		ct[i] ^= 0x10;
	}
	CHECK(all_fail);
	CHECK(bw_open(k->enc, "assoX", 5, ct, sizeof ct, out) == BW_EAUTH);
	CHECK(bw_open(k->enc, ad, 5, ct, sizeof ct - 1, out) != 0);
	CHECK(bw_open(k->enc, ad, 5, ct, 10, out) == BW_EFORMAT);
	CHECK(bw_open(k->enc, ad, 5, ct, sizeof ct, out) == 0);

	/* in place: out == pt + nonce */
	uint8_t buf[100 + BW_SEAL_OVERHEAD];
	memcpy(buf + BW_NONCE_LEN, pt, 100);
	CHECK(bw_seal(k->enc, NULL, 0, buf + BW_NONCE_LEN, 100, buf) == 0);
	CHECK(bw_open(k->enc, NULL, 0, buf, sizeof buf, out) == 0);
	CHECK(memcmp(out, pt, 100) == 0);

	/* Argon2id: deterministic, salt- and passphrase-sensitive */
	uint8_t salt[16] = {1, 2, 3}, a[32], b[32], c[32];
	CHECK(bw_kdf("pw", 2, salt, 1, 1 << 16, a) == 0);
	CHECK(bw_kdf("pw", 2, salt, 1, 1 << 16, b) == 0);
	CHECK(memcmp(a, b, 32) == 0);
	CHECK(bw_kdf("pX", 2, salt, 1, 1 << 16, c) == 0);
	CHECK(memcmp(a, c, 32) != 0);
	salt[0] = 9;
	CHECK(bw_kdf("pw", 2, salt, 1, 1 << 16, c) == 0);
	CHECK(memcmp(a, c, 32) != 0);
	CHECK(bw_kdf("pw", 2, salt, 0, 1 << 16, c) == BW_EINVAL);

	bw_keys_free(k);
	TEST_DONE();
}
