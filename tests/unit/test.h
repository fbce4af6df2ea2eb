/* A minimal test helper: CHECK records a failure and goes on; the
 * program's exit status says whether any check failed. */
#ifndef BW_TEST_H
#define BW_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failures, test_checks;

#define CHECK(cond)                                                        \
	do {                                                               \
		test_checks++;                                             \
		if (!(cond)) {                                             \
			test_failures++;                                   \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n",       \
			        __FILE__, __LINE__, #cond);                \
		}                                                          \
	} while (0)
#define CHECK_EQ_INT(a, b)                                                 \
	do {                                                               \
		long long a_ = (long long)(a), b_ = (long long)(b);        \
		test_checks++;                                             \
		if (a_ != b_) {                                            \
			test_failures++;                                   \
			fprintf(stderr, "%s:%d: %s == %lld, expected %lld\n", \
			        __FILE__, __LINE__, #a, a_, b_);           \
		}                                                          \
	} while (0)
#define TEST_DONE()                                                        \
	do {                                                               \
		fprintf(stderr, "%s: %d checks, %d failed\n", __FILE__,    \
		        test_checks, test_failures);                       \
		return test_failures ? 1 : 0;                              \
	} while (0)

#endif
