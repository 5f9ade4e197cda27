# tallyConfig.cmake - find_package(tally) after make install: the imported
# target tally::tally (tally.h's directory, libtally.so.0 and the MPI's C
# target, which tally.h needs).  Relocatable: paths are found from this
# file's place, PREFIX/lib/cmake/tally.
include(CMakeFindDependencyMacro)
find_dependency(MPI COMPONENTS C)
get_filename_component(_tally_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
if(NOT TARGET tally::tally)
  add_library(tally::tally SHARED IMPORTED)
  set_target_properties(tally::tally PROPERTIES
    IMPORTED_LOCATION "${_tally_prefix}/lib/libtally.so.0"
    IMPORTED_SONAME "libtally.so.0"
    INTERFACE_INCLUDE_DIRECTORIES "${_tally_prefix}/include"
    INTERFACE_LINK_LIBRARIES MPI::MPI_C)
endif()
unset(_tally_prefix)
