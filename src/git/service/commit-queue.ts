/** A max-heap of commits by committer timestamp: the walks go newest first, as git's do. */
export class CommitQueue {
  #items: { oid: string; time: number }[] = [];
  get size() {
    return this.#items.length;
  }
  push(oid: string, time: number) {
    const items = this.#items;
    items.push({ oid, time });
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((items[parent] as { time: number }).time >= time) break;
      [items[i], items[parent]] = [
        items[parent] as { oid: string; time: number },
        items[i] as { oid: string; time: number },
      ];
      i = parent;
    }
  }
  pop(): { oid: string; time: number } | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < items.length && (items[l] as { time: number }).time > (items[m] as { time: number }).time) m = l;
        if (r < items.length && (items[r] as { time: number }).time > (items[m] as { time: number }).time) m = r;
        if (m === i) break;
        [items[i], items[m]] = [items[m] as { oid: string; time: number }, items[i] as { oid: string; time: number }];
        i = m;
      }
    }
    return top;
  }
}
