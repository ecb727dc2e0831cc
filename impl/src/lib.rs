//! uffd-impl: placeholder until the interval implementation lands.
