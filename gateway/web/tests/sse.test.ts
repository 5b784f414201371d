import { describe, expect, it } from 'vitest';
import { SseParser } from '../src/lib/sse';

function feed(parser: SseParser, chunks: string[]) {
  return chunks.flatMap((chunk) => parser.push(chunk));
}

const STREAM =
  ': keep-alive\n\n' +
  'event: snapshot\nid: 1-10\ndata: {"status":"pending"}\n\n' +
  'event: order.paid\nid: 1-11\ndata: {"status":"paid"}\n\n';

describe('SSE parser', () => {
  it('reads named events with their ids and skips comments', () => {
    const events = feed(new SseParser(), [STREAM]);
    expect(events).toEqual([
      { event: 'snapshot', data: '{"status":"pending"}', id: '1-10' },
      { event: 'order.paid', data: '{"status":"paid"}', id: '1-11' },
    ]);
  });

  it('gives the same events whatever the chunk boundaries', () => {
    const whole = feed(new SseParser(), [STREAM]);
    for (let size = 1; size <= 7; size++) {
      const chunks: string[] = [];
      for (let i = 0; i < STREAM.length; i += size) chunks.push(STREAM.slice(i, i + size));
      expect(feed(new SseParser(), chunks)).toEqual(whole);
    }
  });

  it('handles CRLF and CR line ends, even split between chunks', () => {
    const parser = new SseParser();
    const events = feed(parser, ['event: a\r', '\ndata: 1\r\n\r', '\nevent: b\rdata: 2\r\r']);
    expect(events.map((e) => [e.event, e.data])).toEqual([
      ['a', '1'],
      ['b', '2'],
    ]);
  });

  it('joins multi-line data with newlines', () => {
    const events = feed(new SseParser(), ['data: first\ndata:second\ndata:  third\n\n']);
    expect(events).toEqual([{ event: 'message', data: 'first\nsecond\n third', id: '' }]);
  });

  it('keeps the last id for reconnecting, and ignores events without data', () => {
    const parser = new SseParser();
    const events = feed(parser, ['id: 7\n\n', 'event: x\n\n', 'data: y\n\n']);
    expect(events).toEqual([{ event: 'message', data: 'y', id: '7' }]);
    expect(parser.lastEventId).toBe('7');
  });

  it('waits for the blank line before dispatching', () => {
    const parser = new SseParser();
    expect(parser.push('event: order.paid\ndata: {}\n')).toEqual([]);
    expect(parser.push('\n')).toHaveLength(1);
  });

  it('reads retry and drops a half event on reset, keeping the id', () => {
    const parser = new SseParser();
    feed(parser, ['retry: 2500\nid: 5\ndata: done\n\n', 'event: half\ndata: lost']);
    expect(parser.retry).toBe(2500);
    parser.reset();
    expect(parser.push('data: next\n\n')).toEqual([{ event: 'message', data: 'next', id: '5' }]);
  });
});
