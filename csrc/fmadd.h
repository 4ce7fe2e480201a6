// a·b + c with the same rounding in every compiled copy of a loop.
//
// Left to the compiler, a*b+c may be contracted into one FMA in some inlined copies of a loop body
// and not in others (the serial and the OpenMP copy of the same lambda differed: results changed
// in the last bit with the thread count). Where the target has FMA this is always the fused
// operation (one instruction, no libm call); elsewhere the compiler cannot contract, so the plain
// expression is already the same everywhere.
#pragma once
#include <cmath>

namespace fspai {

inline double fmadd(double a, double b, double c) {
#if defined(__FMA__)
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

}  // namespace fspai
