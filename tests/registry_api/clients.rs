//! Real clients against the router served over plain HTTP on 127.0.0.1 (filled in below).
