! preload_fh.f90 - libtally-preload.so test through mpif.h (see preload_f.inc).
program preload_fh
  implicit none
  include 'mpif.h'
  include 'preload_f.inc'
end program preload_fh

! A user op for MPI_INTEGER and types made of it: inoutvec += invec.
subroutine usum(invec, inoutvec, len, dtype)
  implicit none
  include 'mpif.h'
  integer :: len, dtype, sz, e
  integer :: invec(*), inoutvec(*)
  call MPI_Type_size(dtype, sz, e)
  inoutvec(1:len * sz / 4) = inoutvec(1:len * sz / 4) + invec(1:len * sz / 4)
end subroutine usum
