//! Integration tests for blazesym.

#![cfg_attr(not(linux), allow(dead_code, unused_imports))]

mod suite;
