# Run-time options for the sanitizer builds (make test-asan, make fuzz; docs/robustness.md). Sourced.
# LibTorch and the system libraries are not instrumented; each setting below is the minimum that this needs:
#   alloc_dealloc_mismatch=0   LibTorch frees with free() some buffers that instrumented code's templates
#                              allocated with new[] (and vice versa) across the library boundary.
#   new_delete_type_size=0     (gcc's sized delete against LibTorch's unsized operator new)
#   detect_container_overflow=0  std::vector/string annotations are only partly seen when LibTorch (not
#                              instrumented) resizes containers our code created: false reports.
#   LSan suppressions          one-time global allocations of LibTorch, oneDNN/OpenMP and TBB that live until
#                              exit (tools/sanitizers/lsan.supp).
_gb_san_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}alloc_dealloc_mismatch=0:new_delete_type_mismatch=0:detect_container_overflow=0:detect_odr_violation=0:abort_on_error=1:print_summary=1"
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$_gb_san_dir/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1:halt_on_error=1:suppressions=$_gb_san_dir/ubsan.supp"
unset _gb_san_dir
