//! A minimal DER reader for the few ASN.1 structures a client certificate file holds
//! (PKCS#12 containers, PKCS#8 keys, their algorithm parameters), plus the two BER forms
//! PKCS#12 writers such as BouncyCastle (EJBCA, Java tools) use: indefinite lengths and
//! OCTET STRINGs split into pieces. Every length is checked against the input and
//! nesting is bounded, so hostile bytes give an error, never a panic or a large
//! allocation.

use std::borrow::Cow;

pub const SEQUENCE: u8 = 0x30;
pub const INTEGER: u8 = 0x02;
pub const OCTET_STRING: u8 = 0x04;
pub const OID: u8 = 0x06;
/// `[0]` constructed: an EXPLICIT tag, or an IMPLICIT constructed value.
pub const CONTEXT_0: u8 = 0xa0;
/// `[0]` primitive: an IMPLICIT OCTET STRING such as `encryptedContent`.
pub const CONTEXT_0_PRIMITIVE: u8 = 0x80;
/// The bit that marks a constructed encoding.
const CONSTRUCTED: u8 = 0x20;
/// Deepest nesting of indefinite-length elements or string pieces accepted.
const MAX_DEPTH: usize = 32;

/// Why some bytes are not the DER that was expected. Names structure, never content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerError(pub &'static str);

pub type DerResult<T> = Result<T, DerError>;

/// One tag-length-value element.
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub value: &'a [u8],
}

/// Reads consecutive elements from a byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { rest: data }
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// The next element, whatever its tag. For an indefinite length, `value` is the
    /// contents up to (not including) the end-of-contents octets.
    pub fn any(&mut self) -> DerResult<Tlv<'a>> {
        let (tlv, rest) = element(self.rest, 0)?;
        self.rest = rest;
        Ok(tlv)
    }

    /// The next element as an OCTET STRING's contents, primitive or in pieces.
    pub fn octets(&mut self) -> DerResult<Cow<'a, [u8]>> {
        octets_of(self.any()?, OCTET_STRING)
    }

    /// The next element's value, which must carry `tag`.
    pub fn expect(&mut self, tag: u8) -> DerResult<&'a [u8]> {
        let tlv = self.any()?;
        if tlv.tag == tag {
            Ok(tlv.value)
        } else {
            Err(DerError("unexpected element"))
        }
    }

    /// The next element's value if it carries `tag`; otherwise nothing is consumed.
    pub fn optional(&mut self, tag: u8) -> DerResult<Option<&'a [u8]>> {
        if self.peek_tag() == Some(tag) {
            self.expect(tag).map(Some)
        } else {
            Ok(None)
        }
    }

    /// A SEQUENCE's contents as a reader of their own.
    pub fn sequence(&mut self) -> DerResult<Reader<'a>> {
        self.expect(SEQUENCE).map(Reader::new)
    }

    /// A non-negative INTEGER that fits in a `u32` (iteration counts, key lengths).
    pub fn small_uint(&mut self) -> DerResult<u32> {
        let bytes = self.expect(INTEGER)?;
        match bytes {
            [] => Err(DerError("empty integer")),
            [first, ..] if first & 0x80 != 0 => Err(DerError("negative integer")),
            _ => {
                let trimmed = &bytes[bytes.iter().take_while(|&&b| b == 0).count()..];
                if trimmed.len() > 4 {
                    return Err(DerError("integer too large"));
                }
                Ok(trimmed
                    .iter()
                    .fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
            }
        }
    }
}

/// One element at the start of `data`, and what follows it.
fn element(data: &[u8], depth: usize) -> DerResult<(Tlv<'_>, &[u8])> {
    let (&tag, after_tag) = data.split_first().ok_or(DerError("truncated"))?;
    if tag & 0x1f == 0x1f {
        return Err(DerError("multi-byte tags are not used here"));
    }
    let (&first, after_len) = after_tag.split_first().ok_or(DerError("truncated"))?;
    let (len, body) = match first {
        0x00..=0x7f => (usize::from(first), after_len),
        0x80 => {
            if tag & CONSTRUCTED == 0 {
                return Err(DerError("indefinite length on a primitive element"));
            }
            if depth >= MAX_DEPTH {
                return Err(DerError("nested too deeply"));
            }
            let mut rest = after_len;
            while !rest.starts_with(&[0, 0]) {
                if rest.is_empty() {
                    return Err(DerError("truncated"));
                }
                rest = element(rest, depth + 1)?.1;
            }
            let value = &after_len[..after_len.len() - rest.len()];
            return Ok((Tlv { tag, value }, &rest[2..]));
        }
        0x81..=0x84 => {
            let n = usize::from(first & 0x7f);
            if after_len.len() < n {
                return Err(DerError("truncated"));
            }
            let len = after_len[..n]
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            (len, &after_len[n..])
        }
        _ => return Err(DerError("length too large")),
    };
    if body.len() < len {
        return Err(DerError("truncated"));
    }
    let (value, rest) = body.split_at(len);
    Ok((Tlv { tag, value }, rest))
}

/// A string's contents from an element tagged `primitive` (borrowed), or tagged as its
/// constructed form: BER pieces, themselves primitive or constructed, joined.
pub fn octets_of(tlv: Tlv<'_>, primitive: u8) -> DerResult<Cow<'_, [u8]>> {
    fn join(pieces: &[u8], out: &mut Vec<u8>, depth: usize) -> DerResult<()> {
        if depth >= MAX_DEPTH {
            return Err(DerError("nested too deeply"));
        }
        let mut reader = Reader::new(pieces);
        while !reader.is_empty() {
            let piece = reader.any()?;
            match piece.tag {
                OCTET_STRING => out.extend_from_slice(piece.value),
                t if t == OCTET_STRING | CONSTRUCTED => join(piece.value, out, depth + 1)?,
                _ => return Err(DerError("unexpected element in a string")),
            }
        }
        Ok(())
    }
    if tlv.tag == primitive {
        Ok(Cow::Borrowed(tlv.value))
    } else if tlv.tag == primitive | CONSTRUCTED {
        let mut joined = Vec::new();
        join(tlv.value, &mut joined, 0)?;
        Ok(Cow::Owned(joined))
    } else {
        Err(DerError("unexpected element"))
    }
}

/// The OCTET STRING `data` must consist of, primitive or in pieces.
pub fn single_octets(data: &[u8]) -> DerResult<Cow<'_, [u8]>> {
    let mut reader = Reader::new(data);
    let value = reader.octets()?;
    if reader.is_empty() {
        Ok(value)
    } else {
        Err(DerError("trailing bytes"))
    }
}

/// Reads the one element `data` must consist of, with its tag checked.
pub fn single(data: &[u8], tag: u8) -> DerResult<&[u8]> {
    let mut reader = Reader::new(data);
    let value = reader.expect(tag)?;
    if reader.is_empty() {
        Ok(value)
    } else {
        Err(DerError("trailing bytes"))
    }
}

/// An OBJECT IDENTIFIER's contents in dotted form, for messages about what is unsupported.
pub fn oid_text(oid: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for &byte in oid {
        value = value
            .saturating_mul(128)
            .saturating_add(u64::from(byte & 0x7f));
        if byte & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.extend([first, value - first * 40]);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
    }
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_lengths() {
        let mut long = vec![0x04, 0x81, 0x80];
        long.extend([7u8; 0x80]);
        long.extend([0x02, 0x02, 0x00, 0x80]);
        let mut r = Reader::new(&long);
        assert_eq!(r.expect(OCTET_STRING).unwrap().len(), 0x80);
        assert_eq!(r.small_uint().unwrap(), 0x80);
        assert!(r.is_empty());
    }

    #[test]
    fn reads_ber_indefinite_lengths_and_split_strings() {
        // SEQUENCE (indefinite) { OCTET STRING in pieces "ab" "c", INTEGER 5 } + trailer
        let ber = [
            0x30, 0x80, 0x24, 0x80, 0x04, 0x02, b'a', b'b', 0x04, 0x01, b'c', 0x00, 0x00, 0x02,
            0x01, 0x05, 0x00, 0x00, 0x05, 0x00,
        ];
        let mut outer = Reader::new(&ber);
        let mut seq = outer.sequence().unwrap();
        assert_eq!(seq.octets().unwrap().as_ref(), b"abc");
        assert_eq!(seq.small_uint().unwrap(), 5);
        assert!(seq.is_empty());
        assert_eq!(outer.expect(0x05).unwrap(), b"");
        assert!(outer.is_empty());
        assert!(matches!(
            single_octets(&[0x04, 0x01, b'x']).unwrap(),
            Cow::Borrowed(b"x")
        ));
    }

    #[test]
    fn hostile_ber_is_an_error() {
        let mut deep = [0x30, 0x80].repeat(40);
        deep.extend([0x00, 0x00].repeat(40));
        let mut pieces = [0x24, 0x80].repeat(40);
        pieces.extend([0x00, 0x00].repeat(40));
        for bytes in [
            &[0x30, 0x80, 0x02, 0x01, 0x05][..],
            &[0x04, 0x80, 0x00, 0x00],
            &[0x30, 0x80, 0x00],
            &deep,
        ] {
            assert!(Reader::new(bytes).any().is_err(), "{bytes:?}");
        }
        assert!(Reader::new(&pieces).octets().is_err());
        assert!(
            Reader::new(&[0x24, 0x03, 0x02, 0x01, 0x05])
                .octets()
                .is_err()
        );
    }

    #[test]
    fn oid_text_is_dotted() {
        assert_eq!(
            oid_text(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0e]),
            "1.2.840.113549.1.5.14"
        );
        assert_eq!(oid_text(&[0x60, 0x86, 0x48, 0x01]), "2.16.840.1");
    }

    #[test]
    fn hostile_lengths_are_errors() {
        for bytes in [
            &[][..],
            &[0x30],
            &[0x30, 0x05, 0x01],
            &[0x30, 0x85, 1, 0, 0, 0, 0],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            &[0x1f, 0x01, 0x00],
        ] {
            assert!(Reader::new(bytes).any().is_err(), "{bytes:?}");
        }
        assert!(Reader::new(&[0x02, 0x01, 0xff]).small_uint().is_err());
        assert!(
            Reader::new(&[0x02, 0x05, 1, 0, 0, 0, 0])
                .small_uint()
                .is_err()
        );
        assert!(single(&[0x05, 0x00, 0x05, 0x00], 0x05).is_err());
        assert_eq!(
            Reader::new(&[0x04, 0x00]).expect(SEQUENCE).unwrap_err(),
            DerError("unexpected element")
        );
    }
}
