// Small symmetric eigensolvers (no LAPACK dependency): the exact path for tiny graphs and the
// projected-matrix solves inside Lanczos.
#pragma once
#include <vector>

namespace fspai {

// Implicit QL on a symmetric tridiagonal matrix. d[0..n) diagonal, e[0..n) with e[i] = T(i,i+1)
// (e[n-1] ignored). On return d holds the eigenvalues (unsorted). If zrow != nullptr it must hold
// one row of the identity (e.g. the last); it is transformed into that row of the eigenvector
// matrix (column j of Z is the eigenvector of d[j]) at O(1) cost per rotation.
// Returns false if an eigenvalue needed more than 60 QL sweeps.
bool tridiagonal_ql(int n, double* d, double* e, double* zrow);
// Same, transforming `zrows` rows of an n-column row-major matrix z (zrows = n with z = I gives
// all eigenvectors: column j of z is the eigenvector of d[j]). O(n) per rotation per row.
bool tridiagonal_ql_rows(int n, double* d, double* e, double* z, int zrows);

// Eigenvalues of a dense symmetric n×n matrix (row-major, destroyed), descending.
// Householder tridiagonalisation + implicit QL: (4/3)n³ flops.
std::vector<double> symmetric_eigenvalues(int n, double* a);

// Eigen-decomposition of a dense symmetric n×n matrix by cyclic Jacobi (row-major `a`, destroyed).
// Eigenvalues descending in `w`; eigenvectors in the columns of `v` (row-major n×n).
// Used only on the rare thick-restart path of Lanczos, where the projected matrix is not
// tridiagonal.
void symmetric_eigen_jacobi(int n, double* a, std::vector<double>& w, std::vector<double>& v);

}  // namespace fspai
