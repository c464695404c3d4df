/* Compiles the C header under strict warnings (built as C99 and C11 by CMake). */
#include "llmedge.h"

int llmedge_header_check(void);
int llmedge_header_check(void) { return LLMEDGE_ABI_VERSION + (int)LLMEDGE_STATUS_OK; }
