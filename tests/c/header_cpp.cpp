// Compiles the C header as C++ (C++11 and C++17), and the C++ wrapper under C++17.
#include "llmedge.h"
#if __cplusplus >= 201703L
#include "llmedge.hpp"
#endif

int llmedge_header_check_cpp();
int llmedge_header_check_cpp() { return LLMEDGE_ABI_VERSION; }
