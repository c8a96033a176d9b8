/*
 * pkcs11_speed: what `openssl speed` would say for a key inside a token.
 *
 * openssl speed signs with keys it makes itself, in software: it cannot use
 * a token's key.  This is its counterpart for tests/bench/seal_hsm: one
 * process, one thread, the key loaded ONCE through OpenSSL's pkcs11 engine
 * (libp11) exactly as workers/hsm_key.c loads the seal's key (ENGINE_by_id
 * "pkcs11", MODULE_PATH, PIN, ENGINE_init, ENGINE_load_private_key of the
 * URI), then RSA PKCS#1 v1.5 signatures of SHA-256 digests with one
 * EVP_PKEY_CTX (what the worker's signing template does per job, without
 * the CMS around it) for SECONDS seconds after a warm-up.  Prints
 * "signs N seconds S rate R" (signatures per second).
 *
 * usage: pkcs11_speed MODULE PIN_FILE URI SECONDS
 * build: cc -O2 -o pkcs11_speed pkcs11_speed.c -lcrypto
 */
#define OPENSSL_SUPPRESS_DEPRECATED		/* the ENGINE API, as in hsm_key.c */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
die(const char *what)
{
	fprintf(stderr, "pkcs11_speed: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

/* one signature of a fresh digest; false when the token refuses */
static int
sign_once(EVP_PKEY_CTX *ctx, unsigned char *digest, unsigned char *sig, size_t max)
{
	size_t		len = max;

	/* a different digest each time, as the worker signs different attributes */
	digest[0]++;
	return EVP_PKEY_sign(ctx, sig, &len, digest, 32) == 1 && len > 0;
}

int
main(int argc, char **argv)
{
	ENGINE	   *e;
	EVP_PKEY   *key;
	EVP_PKEY_CTX *ctx;
	char		pin[257];
	FILE	   *f;
	double		seconds;
	double		t0;
	double		t;
	long		n = 0;
	unsigned char digest[32];
	unsigned char sig[1024];

	if (argc != 5 || (seconds = atof(argv[4])) <= 0)
	{
		fprintf(stderr, "usage: pkcs11_speed MODULE PIN_FILE URI SECONDS\n");
		return 2;
	}
	if ((f = fopen(argv[2], "r")) == NULL || fgets(pin, sizeof(pin), f) == NULL)
		die("the PIN file cannot be read");
	fclose(f);
	pin[strcspn(pin, "\r\n")] = '\0';

	e = ENGINE_by_id("pkcs11");
	if (e == NULL)
		die("OpenSSL's pkcs11 engine cannot be loaded");
	if (ENGINE_ctrl_cmd_string(e, "MODULE_PATH", argv[1], 0) != 1 ||
		ENGINE_ctrl_cmd_string(e, "PIN", pin, 0) != 1 || ENGINE_init(e) != 1)
		die("the PKCS#11 module cannot be initialised");
	key = ENGINE_load_private_key(e, argv[3], NULL, NULL);
	if (key == NULL)
		die("the key cannot be loaded");
	ctx = EVP_PKEY_CTX_new(key, NULL);
	if (ctx == NULL || EVP_PKEY_sign_init(ctx) != 1 ||
		EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1 ||
		EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) != 1)
		die("the signing context cannot be made");
	if (RAND_bytes(digest, sizeof(digest)) != 1)
		die("no random digest");

	/* warm-up: a tenth of the time, at least one signature */
	t0 = now();
	do
	{
		if (!sign_once(ctx, digest, sig, sizeof(sig)))
			die("signing failed");
	} while (now() - t0 < seconds / 10);

	t0 = now();
	do
	{
		if (!sign_once(ctx, digest, sig, sizeof(sig)))
			die("signing failed");
		n++;
	} while ((t = now() - t0) < seconds);
	printf("signs %ld seconds %.3f rate %.1f\n", n, t, n / t);

	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(key);
	ENGINE_finish(e);
	ENGINE_free(e);
	return 0;
}
