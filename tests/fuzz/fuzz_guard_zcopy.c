/* libFuzzer target: a compressed vault copy (src/guard/zcopy.c), as the
 * analysis and a rollback read it.  The vault is the guard's own, but it
 * is on disk where a damaged machine or an attacker may have changed it:
 * reading must stay bounded and never crash, and a copy whose index
 * passes must read back exactly its declared size.  Also one packed copy
 * of a segment, its length taken from the first three bytes. */
#include "zcopy.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("zcopy", 0), out = memfd_create("back", 0);
	if (fd < 0 || out < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	struct gz_reader z;
	if (gz_open(&z, fd) == 0) {
		/* bounded: the index limits what a read may decompress */
		if (z.size > (64u << 20)) {
			gz_close(&z);
			goto done;
		}
		static uint8_t buf[1 << 16];
		uint64_t total = 0;
		size_t n = 0;
		for (uint64_t off = 0; off < z.size; off += n) {
			if (gz_read(&z, off, buf, sizeof buf, &n) || n == 0)
				break;
			total += n;
		}
		if (total > z.size)
			abort();
		gz_close(&z);
		uint64_t rs = 0;
		(void)gz_restore(fd, out, &rs);
	}
done:
	/* the input as a segment holding one packed copy at offset 0 */
	if (size >= 3) {
		static uint8_t pk[GZ_BATCH];
		uint64_t len = ((uint64_t)data[0] << 16 | (uint64_t)data[1] << 8 | data[2]) % (GZ_BATCH + 2);
		(void)gz_unpack(fd, 3, len, 1, pk);
		(void)gz_unpack(fd, 0, len, data[0] & 1, pk);
	}
	close(fd);
	close(out);
	return 0;
}
