# ccache when present. PCH-compatible settings: GCC needs -fpch-preprocess and ccache needs pch_defines/time_macros sloppiness.
# CCACHE_NOHASHDIR: with -g, ccache hashes the build folder by default, so a fresh clone (CI) or a second worktree
# never hit the cache (measured: 1.3 % hits); object files from another folder differ only in debug-info paths.
find_program(GB_CCACHE ccache)
if(GB_CCACHE AND NOT DEFINED ENV{GB_NO_CCACHE})
  set(CMAKE_CXX_COMPILER_LAUNCHER
      ${CMAKE_COMMAND} -E env "CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime"
      "CCACHE_BASEDIR=${CMAKE_SOURCE_DIR}" CCACHE_NOHASHDIR=1 ${GB_CCACHE})
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    add_compile_options(-fpch-preprocess)
  endif()
  message(STATUS "goca-bench: using ccache ${GB_CCACHE}")
endif()
