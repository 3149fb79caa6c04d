//! The few ASN.1 reads a client certificate file needs (PKCS#12 containers, PKCS#8 keys,
//! their algorithm parameters), done by RustCrypto's `der` crate under BER rules: PKCS#12
//! writers such as BouncyCastle (EJBCA, Java tools) use indefinite lengths and OCTET
//! STRINGs split into pieces, which DER forbids. The crate checks every length against
//! the input and bounds nesting, so hostile bytes give an error, never a panic or a large
//! allocation. This module only narrows its API to what the readers use and turns its
//! errors into short phrases that name structure, never content.

use std::borrow::Cow;

use der::asn1::{ContextSpecific, OctetString, OctetStringRef};
use der::{
    Decode, EncodingRules, ErrorKind, Header, Length, Reader as _, SliceReader, Tag, TagNumber,
};

pub use der::asn1::ObjectIdentifier as Oid;

/// Why some bytes are not the structure that was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerError(pub &'static str);

pub type DerResult<T> = Result<T, DerError>;

impl From<der::Error> for DerError {
    fn from(e: der::Error) -> Self {
        DerError(match e.kind() {
            ErrorKind::Incomplete { .. } => "truncated",
            ErrorKind::TagUnexpected { .. } | ErrorKind::TagUnknown { .. } => "unexpected element",
            ErrorKind::TrailingData { .. } => "trailing bytes",
            ErrorKind::NestingDepth => "nested too deeply",
            ErrorKind::Length { .. } | ErrorKind::Overlength | ErrorKind::Overflow => {
                "length too large"
            }
            ErrorKind::IndefiniteLength => "bad indefinite length",
            ErrorKind::Noncanonical { .. } => "non-canonical encoding",
            ErrorKind::OidMalformed | ErrorKind::OidUnknown { .. } => "malformed object identifier",
            _ => "malformed",
        })
    }
}

/// The length octet that opens an indefinite length (X.690 8.1.3.6).
const INDEFINITE: u8 = 0x80;

/// The two zero octets that close an indefinite length.
const END_OF_CONTENTS: Length = Length::new(2);

/// `[n]` constructed: an EXPLICIT tag (or an IMPLICIT constructed value).
const fn context(number: u32) -> Tag {
    Tag::ContextSpecific {
        constructed: true,
        number: TagNumber(number),
    }
}

/// Reads consecutive elements from a byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a>(SliceReader<'a>);

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> DerResult<Self> {
        Ok(Reader(SliceReader::new_with_encoding_rules(
            data,
            EncodingRules::Ber,
        )?))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_finished()
    }

    /// Whether the next element carries `tag` (nothing is consumed).
    pub fn next_is(&self, tag: Tag) -> bool {
        Tag::peek(&self.0).is_ok_and(|t| t == tag)
    }

    /// The next element's contents, which must carry `tag`. For an indefinite length,
    /// the contents up to (not including) the end-of-contents octets.
    pub fn expect(&mut self, tag: Tag) -> DerResult<&'a [u8]> {
        // The crate measures an indefinite length up to and including the two
        // end-of-contents octets, and only its typed decoders strip them; the raw
        // contents are wanted here, so the marker is recognised and consumed by hand.
        let indefinite = {
            let mut ahead = self.0.clone();
            Tag::decode(&mut ahead)?;
            ahead.peek_byte() == Some(INDEFINITE)
        };
        let header = Header::decode(&mut self.0)?;
        if header.tag() != tag {
            return Err(DerError("unexpected element"));
        }
        if !indefinite {
            return Ok(self.0.read_slice(header.length())?);
        }
        let value = self
            .0
            .read_slice(header.length().saturating_sub(END_OF_CONTENTS))?;
        match self.0.read_slice(END_OF_CONTENTS)? {
            [0, 0] => Ok(value),
            _ => Err(DerError("bad indefinite length")),
        }
    }

    /// A SEQUENCE's contents as a reader of their own.
    pub fn sequence(&mut self) -> DerResult<Reader<'a>> {
        Reader::new(self.expect(Tag::Sequence)?)
    }

    /// A SEQUENCE's contents if one comes next; otherwise nothing is consumed.
    pub fn optional_sequence(&mut self) -> DerResult<Option<Reader<'a>>> {
        if self.next_is(Tag::Sequence) {
            self.sequence().map(Some)
        } else {
            Ok(None)
        }
    }

    /// The contents of an `[n] EXPLICIT` element: the encoding of the value inside.
    pub fn explicit(&mut self, number: u32) -> DerResult<&'a [u8]> {
        self.expect(context(number))
    }

    pub fn oid(&mut self) -> DerResult<Oid> {
        Ok(Oid::decode(&mut self.0)?)
    }

    /// The next element as an OCTET STRING's contents, primitive or in pieces.
    pub fn octets(&mut self) -> DerResult<Cow<'a, [u8]>> {
        if Header::peek(&self.0)?.is_constructed() {
            Ok(Cow::Owned(OctetString::decode(&mut self.0)?.into()))
        } else {
            let octets: &'a OctetStringRef = Decode::decode(&mut self.0)?;
            Ok(Cow::Borrowed(octets.as_bytes()))
        }
    }

    /// An `[n] IMPLICIT OCTET STRING`'s contents, primitive or in pieces.
    pub fn implicit_octets(&mut self, number: u32) -> DerResult<Vec<u8>> {
        ContextSpecific::<OctetString>::decode_implicit(&mut self.0, TagNumber(number))?
            .map(|field| field.value.into())
            .ok_or(DerError("unexpected element"))
    }

    /// A non-negative INTEGER that fits in a `u32` (iteration counts, key lengths).
    pub fn small_uint(&mut self) -> DerResult<u32> {
        Ok(u32::decode(&mut self.0)?)
    }
}

/// The contents of the one element `data` must consist of, with its tag checked.
pub fn single(data: &[u8], tag: Tag) -> DerResult<&[u8]> {
    let mut reader = Reader::new(data)?;
    let value = reader.expect(tag)?;
    finished(&reader, value)
}

/// The one SEQUENCE `data` must consist of, as a reader of its contents.
pub fn single_sequence(data: &[u8]) -> DerResult<Reader<'_>> {
    Reader::new(single(data, Tag::Sequence)?)
}

/// The OCTET STRING `data` must consist of, primitive or in pieces.
pub fn single_octets(data: &[u8]) -> DerResult<Cow<'_, [u8]>> {
    let mut reader = Reader::new(data)?;
    let value = reader.octets()?;
    finished(&reader, value)
}

fn finished<T>(reader: &Reader<'_>, value: T) -> DerResult<T> {
    if reader.is_empty() {
        Ok(value)
    } else {
        Err(DerError("trailing bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::asn1::AnyRef;

    /// Reads one element of any kind, as a reader meets it.
    fn element(bytes: &[u8]) -> DerResult<()> {
        let mut reader = Reader::new(bytes)?;
        AnyRef::decode(&mut reader.0)?;
        Ok(())
    }

    #[test]
    fn reads_short_and_long_lengths() {
        let mut long = vec![0x04, 0x81, 0x80];
        long.extend([7u8; 0x80]);
        long.extend([0x02, 0x02, 0x00, 0x80]);
        let mut r = Reader::new(&long).unwrap();
        assert_eq!(r.expect(Tag::OctetString).unwrap().len(), 0x80);
        assert_eq!(r.small_uint().unwrap(), 0x80);
        assert!(r.is_empty());
    }

    #[test]
    fn reads_ber_indefinite_lengths_and_split_strings() {
        // SEQUENCE (indefinite) { OCTET STRING in pieces "ab" "c", INTEGER 5 } + NULL
        let ber = [
            0x30, 0x80, 0x24, 0x80, 0x04, 0x02, b'a', b'b', 0x04, 0x01, b'c', 0x00, 0x00, 0x02,
            0x01, 0x05, 0x00, 0x00, 0x05, 0x00,
        ];
        let mut outer = Reader::new(&ber).unwrap();
        let mut seq = outer.sequence().unwrap();
        assert_eq!(seq.octets().unwrap().as_ref(), b"abc");
        assert_eq!(seq.small_uint().unwrap(), 5);
        assert!(seq.is_empty());
        assert_eq!(outer.expect(Tag::Null).unwrap(), b"");
        assert!(outer.is_empty());
        assert!(matches!(
            single_octets(&[0x04, 0x01, b'x']).unwrap(),
            Cow::Borrowed(b"x")
        ));
        // `[0] IMPLICIT OCTET STRING`, primitive and in pieces.
        let primitive = [0x80, 0x02, b'h', b'i'];
        assert_eq!(
            Reader::new(&primitive).unwrap().implicit_octets(0).unwrap(),
            b"hi"
        );
        let pieces = [0xa0, 0x80, 0x04, 0x01, b'h', 0x04, 0x01, b'i', 0x00, 0x00];
        assert_eq!(
            Reader::new(&pieces).unwrap().implicit_octets(0).unwrap(),
            b"hi"
        );
    }

    #[test]
    fn hostile_ber_is_an_error() {
        let mut deep = [0x30, 0x80].repeat(80);
        deep.extend([0x00, 0x00].repeat(80));
        let mut pieces = [0x24, 0x80].repeat(80);
        pieces.extend([0x00, 0x00].repeat(80));
        for bytes in [
            &[0x30, 0x80, 0x02, 0x01, 0x05][..],
            &[0x04, 0x80, 0x00, 0x00],
            &[0x30, 0x80, 0x00],
            &deep,
        ] {
            assert!(element(bytes).is_err(), "{bytes:?}");
        }
        assert!(Reader::new(&pieces).unwrap().octets().is_err());
        assert!(
            Reader::new(&[0x24, 0x03, 0x02, 0x01, 0x05])
                .unwrap()
                .octets()
                .is_err()
        );
    }

    #[test]
    fn oids_print_dotted() {
        let mut r = Reader::new(&[
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0e,
        ])
        .unwrap();
        assert_eq!(r.oid().unwrap().to_string(), "1.2.840.113549.1.5.14");
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
            assert!(element(bytes).is_err(), "{bytes:?}");
        }
        assert!(
            Reader::new(&[0x02, 0x01, 0xff])
                .unwrap()
                .small_uint()
                .is_err()
        );
        assert!(
            Reader::new(&[0x02, 0x05, 1, 0, 0, 0, 0])
                .unwrap()
                .small_uint()
                .is_err()
        );
        assert!(single(&[0x05, 0x00, 0x05, 0x00], Tag::Null).is_err());
        assert_eq!(
            Reader::new(&[0x04, 0x00])
                .unwrap()
                .expect(Tag::Sequence)
                .unwrap_err(),
            DerError("unexpected element")
        );
    }
}
