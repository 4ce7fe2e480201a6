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

// The q largest eigenvalues of the symmetric tridiagonal T (d[0..n) diagonal, e[0..n-1)
// off-diagonal; e[n-1] is not read), descending, into lam[0..min(q,n)); returns min(q, n).
// Every copy of a repeated eigenvalue is returned (targets are eigenvalue indices, located by
// Sturm counts). Sturm-count multisection (LAPACK dstebz scheme: Gershgorin interval, count of
// eigenvalues < x from the LDLᵀ pivots of T − xI with the pivmin guard), switching to safeguarded
// Newton steps on det(T − xI) once an interval holds a single eigenvalue; only counts move the
// bounds. Each value to an interval of width ≤ 2ε‖T‖ (or until it stops shrinking): absolute
// error O(ε‖T‖), as QL.
// Why: Lanczos convergence checks need only the top k+1 Ritz values, and this costs
// O(n·q·~9 sweeps) against O(n²) for QL on all of T at every check. Deterministic.
// `work` is scratch (resized to 2n + 7q). Optional warm start: guess_lo/guess_hi[0..nguess) are
// points (e.g. bounds on the previous Ritz values) counted in the first sweep; they only narrow
// the search (each count is used for what it proves), so a wrong guess costs a sweep, never
// accuracy.
int tridiagonal_top_eigenvalues(int n, const double* d, const double* e, int q, double* lam,
                                std::vector<double>& work, const double* guess_lo = nullptr,
                                const double* guess_hi = nullptr, int nguess = 0);

// Eigenvalues of a dense symmetric n×n matrix (row-major, destroyed), descending: all of them
// (q < 0) or the q largest; only the lower triangle is read. Householder tridiagonalisation on
// the lower triangle ((4/3)n³ flops), then implicit QL on
// the tridiagonal, or Sturm bisection for the top q when q < n (cheaper than QL for n > 10).
std::vector<double> symmetric_eigenvalues(int n, double* a, int q = -1);

// Eigen-decomposition of a dense symmetric n×n matrix by cyclic Jacobi (row-major `a`, destroyed).
// Eigenvalues descending in `w`; eigenvectors in the columns of `v` (row-major n×n).
// Used only on the rare thick-restart path of Lanczos, where the projected matrix is not
// tridiagonal.
void symmetric_eigen_jacobi(int n, double* a, std::vector<double>& w, std::vector<double>& v);

}  // namespace fspai
