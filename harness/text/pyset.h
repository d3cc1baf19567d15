#pragma once
// CPython's set of small ints, reproduced for its iteration order (quirk Q12: the paper appends missing
// classes in `set(existent_objects_gt) - included` order). Implements setobject.c's open addressing
// (hash & mask, 9 linear probes, perturbation), table growth, set_merge/set_insert_clean for copies, dummies
// for removals, and set_difference's two strategies. Valid for CPython 3.7–3.12 (unchanged there).
#include <cstdint>
#include <vector>

namespace gb::text {

class PySet {
 public:
  PySet();
  static PySet from_list(const std::vector<int64_t>& items);  // set(list): sequential adds
  void add(int64_t key);
  void remove(int64_t key);  // discard: leaves a dummy
  bool contains(int64_t key) const;
  int64_t size() const { return static_cast<int64_t>(used_); }
  std::vector<int64_t> items() const;          // iteration order (list(s))
  PySet copy() const;                          // set(s) / s.copy()
  PySet difference(const PySet& other) const;  // s - other
  static int64_t hash(int64_t v);              // Python's hash() of an int

 private:
  struct Slot {
    int64_t key = 0;
    int64_t hash = 0;
    int state = 0;  // 0 empty, 1 active, 2 dummy
  };
  void resize(size_t minused);
  static void insert_clean(std::vector<Slot>& table, size_t mask, int64_t key, int64_t hash);
  void add_entry(int64_t key, int64_t h);
  void merge_into_empty(const PySet& other);

  std::vector<Slot> table_;
  size_t mask_ = 7, fill_ = 0, used_ = 0;
};

// The order of list(set(...)) after adding `inserted` in order and removing `removed` (e.g. a label map's
// first-occurrence class order, minus 0): what the paper's datasets return as existent_objects_gt.
std::vector<int64_t> py_set_order(const std::vector<int64_t>& inserted, const std::vector<int64_t>& removed = {});

}  // namespace gb::text
