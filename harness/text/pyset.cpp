#include "harness/text/pyset.h"

namespace gb::text {

namespace {
constexpr size_t kLinearProbes = 9;
constexpr int kPerturbShift = 5;
constexpr size_t kMinSize = 8;
}  // namespace

PySet::PySet() : table_(kMinSize) {}

int64_t PySet::hash(int64_t v) {
  // Python: hash(n) = n mod (2**61 - 1) with the sign kept, and -1 -> -2.
  const int64_t modulus = (int64_t{1} << 61) - 1;
  int64_t h = v >= 0 ? v % modulus : -((-v) % modulus);
  return h == -1 ? -2 : h;
}

PySet PySet::from_list(const std::vector<int64_t>& items) {
  PySet s;
  for (int64_t k : items) s.add(k);
  return s;
}

void PySet::insert_clean(std::vector<Slot>& table, size_t mask, int64_t key, int64_t h) {
  size_t perturb = static_cast<size_t>(h);
  size_t i = static_cast<size_t>(h) & mask;
  while (true) {
    size_t e = i;
    if (table[e].state == 0) {
      table[e] = {key, h, 1};
      return;
    }
    if (i + kLinearProbes <= mask) {
      for (size_t j = 0; j < kLinearProbes; ++j) {
        ++e;
        if (table[e].state == 0) {
          table[e] = {key, h, 1};
          return;
        }
      }
    }
    perturb >>= kPerturbShift;
    i = (i * 5 + 1 + perturb) & mask;
  }
}

void PySet::resize(size_t minused) {
  size_t newsize = kMinSize;
  while (newsize <= minused) newsize <<= 1;
  std::vector<Slot> old;
  old.swap(table_);
  table_.assign(newsize, Slot{});
  mask_ = newsize - 1;
  // fill == used: no dummies to drop; otherwise dummies are dropped. Either way active slots are re-inserted
  // in old slot order.
  fill_ = used_;
  for (const Slot& s : old) {
    if (s.state == 1) insert_clean(table_, mask_, s.key, s.hash);
  }
}

void PySet::add_entry(int64_t key, int64_t h) {
  size_t i = static_cast<size_t>(h) & mask_;
  size_t perturb = static_cast<size_t>(h);
  long freeslot = -1;
  while (true) {
    size_t e = i;
    size_t probes = (i + kLinearProbes <= mask_) ? kLinearProbes : 0;
    while (true) {
      const Slot& s = table_[e];
      if (s.state == 0) {
        if (freeslot >= 0) {
          ++used_;
          table_[freeslot] = {key, h, 1};
          return;
        }
        ++fill_;
        ++used_;
        table_[e] = {key, h, 1};
        if (fill_ * 5 < mask_ * 3) return;
        resize(used_ > 50000 ? used_ * 2 : used_ * 4);
        return;
      }
      if (s.state == 1 && s.hash == h && s.key == key) return;  // already present
      if (s.state == 2 && freeslot < 0) freeslot = static_cast<long>(e);
      if (probes == 0) break;
      --probes;
      ++e;
    }
    perturb >>= kPerturbShift;
    i = (i * 5 + 1 + perturb) & mask_;
  }
}

void PySet::add(int64_t key) { add_entry(key, hash(key)); }

bool PySet::contains(int64_t key) const {
  for (const Slot& s : table_) {
    if (s.state == 1 && s.key == key) return true;
  }
  return false;
}

void PySet::remove(int64_t key) {
  for (Slot& s : table_) {
    if (s.state == 1 && s.key == key) {
      s.state = 2;
      s.hash = -1;
      --used_;
      return;
    }
  }
}

std::vector<int64_t> PySet::items() const {
  std::vector<int64_t> out;
  for (const Slot& s : table_) {
    if (s.state == 1) out.push_back(s.key);
  }
  return out;
}

void PySet::merge_into_empty(const PySet& other) {
  // set_merge() into a fresh set
  if (other.used_ == 0) return;
  if ((fill_ + other.used_) * 5 >= mask_ * 3) resize((used_ + other.used_) * 2);
  if (fill_ == 0 && mask_ == other.mask_ && other.fill_ == other.used_) {
    table_ = other.table_;
    fill_ = other.fill_;
    used_ = other.used_;
    return;
  }
  fill_ = other.used_;
  used_ = other.used_;
  for (const Slot& s : other.table_) {
    if (s.state == 1) insert_clean(table_, mask_, s.key, s.hash);
  }
}

PySet PySet::copy() const {
  PySet r;
  r.merge_into_empty(*this);
  return r;
}

PySet PySet::difference(const PySet& other) const {
  if ((used_ >> 2) > other.used_) {
    // set_copy_and_difference: copy, then discard every element of other (dummies keep the order)
    PySet r = copy();
    for (int64_t k : other.items()) r.remove(k);
    return r;
  }
  PySet r;
  for (const Slot& s : table_) {
    if (s.state == 1 && !other.contains(s.key)) r.add_entry(s.key, s.hash);
  }
  return r;
}

std::vector<int64_t> py_set_order(const std::vector<int64_t>& inserted, const std::vector<int64_t>& removed) {
  PySet s = PySet::from_list(inserted);
  for (int64_t k : removed) s.remove(k);
  return s.items();
}

}  // namespace gb::text
