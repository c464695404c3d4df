/* Minimal assertion helpers for the C tests: a failed CHECK prints where and why and exits 1. */
#ifndef LLMEDGE_TEST_CHECK_H
#define LLMEDGE_TEST_CHECK_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llmedge.h"

#define CHECK(cond)                                                               \
    do {                                                                          \
        if (!(cond)) {                                                            \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            exit(1);                                                              \
        }                                                                         \
    } while (0)

#define CHECK_STATUS(expr, want)                                                           \
    do {                                                                                   \
        llmedge_status got_ = (expr);                                                      \
        if (got_ != (want)) {                                                              \
            fprintf(stderr, "%s:%d: %s returned %d (%s), want %d: %s\n", __FILE__, __LINE__, \
                    #expr, (int)got_, llmedge_status_name(got_), (int)(want),              \
                    llmedge_last_error(NULL));                                              \
            exit(1);                                                                       \
        }                                                                                  \
    } while (0)

#define CHECK_OK(expr) CHECK_STATUS(expr, LLMEDGE_STATUS_OK)

#endif
