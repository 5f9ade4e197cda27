! preload_usempi.f90 - libtally-preload.so test through `use mpi` (see
! preload_f.inc).
program preload_usempi
  use mpi
  implicit none
  include 'preload_f.inc'
end program preload_usempi

! A user op for MPI_INTEGER and types made of it: inoutvec += invec.
subroutine usum(invec, inoutvec, len, dtype)
  use mpi
  implicit none
  integer :: len, dtype, sz, e
  integer :: invec(*), inoutvec(*)
  call MPI_Type_size(dtype, sz, e)
  inoutvec(1:len * sz / 4) = inoutvec(1:len * sz / 4) + invec(1:len * sz / 4)
end subroutine usum
