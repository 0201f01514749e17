//! Certificates: a private CA, site (server) and client certificates, inspection and
//! verification as a TLS client does it.
