import React from 'react';

type Props = { src: string; title?: string } & React.SVGProps<SVGSVGElement>;

/** Stand-in for react-inlinesvg: the icon's file name is enough for tests. */
export default function InlineSVG({ src, title }: Props) {
  return <svg data-icon={src.split('/').pop()} aria-label={title} />;
}
